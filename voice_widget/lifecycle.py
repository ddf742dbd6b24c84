"""Every status change of a conversation, made here and nowhere else.

::

    created ──agent joined──▶ ready ──visitor started──▶ active
       │  └──────────visitor started (start at once)─────▲ │
       └──────────────┴── ended / failed ◀───────────────────┘

Each change is one conditional UPDATE from the statuses ``TRANSITIONS`` allows, so the web
process and the worker may race: the first wins, the other changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .conf import vw_settings
from .models import OPEN_STATUSES, Conversation, ConversationStatus, EndReason
from .signals import conversation_ended

logger = logging.getLogger(__name__)

__all__ = [
    "OPEN_STATUSES",
    "TRANSITIONS",
    "aend_conversation",
    "amark_agent_joined",
    "amark_started",
    "end_conversation",
    "join_window",
    "amark_visitor_left",
    "amark_visitor_returned",
    "mark_visitor_joined",
    "mark_visitor_left",
    "resume_window",
]

Status = ConversationStatus
#: Which status may follow which: the one written statement of a conversation's life.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.CREATED: frozenset({Status.READY, Status.ACTIVE, Status.ENDED, Status.FAILED}),
    Status.READY: frozenset({Status.ACTIVE, Status.ENDED, Status.FAILED}),
    Status.ACTIVE: frozenset({Status.ENDED, Status.FAILED}),
    Status.ENDED: frozenset(),
    Status.FAILED: frozenset(),
}


def _sources(target: str) -> list[str]:
    """The statuses from which a conversation may move to ``target``."""
    return [source for source, targets in TRANSITIONS.items() if target in targets]


async def amark_agent_joined(conversation_id: uuid.UUID | str) -> bool:
    """created → ready: the agent is in the room and its session runs."""
    return bool(
        await Conversation.objects.filter(
            pk=conversation_id, status__in=_sources(Status.READY)
        ).aupdate(status=Status.READY, agent_joined_at=timezone.now())
    )


async def amark_started(conversation_id: uuid.UUID | str) -> bool:
    """created/ready → active: the visitor clicked start (or the persona starts at once)."""
    return bool(
        await Conversation.objects.filter(
            pk=conversation_id, status__in=_sources(Status.ACTIVE)
        ).aupdate(status=Status.ACTIVE, started_at=timezone.now())
    )


#: LiveKit checks a token when it is used, and the news of a join (the agent arriving, the
#: ``participant_joined`` webhook) comes a moment later: an unjoined conversation keeps its
#: place this much beyond its token's lifetime.
JOIN_GRACE_SECONDS = 30


def join_window() -> timedelta:
    """How long a conversation nobody joined holds a place: its token's life, plus the grace."""
    return timedelta(seconds=vw_settings.TOKEN_TTL + JOIN_GRACE_SECONDS)


def mark_visitor_joined(conversation_id: uuid.UUID | str) -> bool:
    """Record that the visitor joined the conversation's room; True if this call recorded it.

    From then on the conversation holds its place under the persona's concurrency limit
    until it ends, like one the agent joined. Only the first join is kept (a reconnect
    sends another ``participant_joined``), and an ended conversation is left alone.
    """
    updated = Conversation.objects.filter(
        pk=conversation_id, status__in=OPEN_STATUSES, visitor_joined_at__isnull=True
    ).update(visitor_joined_at=timezone.now())
    if updated:
        logger.info("conversation %s: the visitor joined the room", conversation_id)
    return bool(updated)


def resume_window() -> timedelta:
    """How long after the visitor's page left the room the same tab may rejoin it."""
    return timedelta(seconds=vw_settings.RESUME_WINDOW)


def mark_visitor_left(conversation_id: uuid.UUID | str) -> bool:
    """Record when the visitor's page left the room of an open conversation (the first
    departure since it was last there counts), so a resume knows whether it is in time.
    False when the conversation is no longer open (nothing to come back to)."""
    return bool(
        Conversation.objects.filter(pk=conversation_id, status__in=OPEN_STATUSES).update(
            visitor_left_at=Coalesce("visitor_left_at", Value(timezone.now()))
        )
    )


def mark_visitor_returned(conversation_id: uuid.UUID | str) -> bool:
    """The visitor is in the room again (a resume): forget the departure."""
    return bool(
        Conversation.objects.filter(pk=conversation_id, visitor_left_at__isnull=False).update(
            visitor_left_at=None
        )
    )


amark_visitor_left = sync_to_async(mark_visitor_left)
amark_visitor_returned = sync_to_async(mark_visitor_returned)


def end_conversation(
    conversation_id: uuid.UUID | str,
    reason: EndReason | str,
    *,
    detail: str = "",
    failed: bool = False,
    usage: dict | None = None,
) -> bool:
    """Mark an open conversation ended (or failed) with ``reason``; True if this call ended it.

    The update is conditional on the conversation still being open, so the web process and
    the worker may both try: exactly one succeeds, and only that one sends
    ``conversation_ended``. ``usage``, when given, is saved with the ending, so receivers
    see it.
    """
    reason = EndReason(reason)
    status = ConversationStatus.FAILED if failed else ConversationStatus.ENDED
    changes = {
        "status": status,
        "end_reason": reason,
        "end_detail": detail[:500],
        "ended_at": timezone.now(),
    }
    if usage is not None:
        changes["usage"] = usage
    with transaction.atomic():
        updated = Conversation.objects.filter(
            pk=conversation_id, status__in=_sources(status)
        ).update(**changes)
    if not updated:
        return False
    conversation = Conversation.objects.select_related("persona").get(pk=conversation_id)
    logger.info(
        "conversation %s ended: %s (persona %s)", conversation.pk, reason, conversation.persona.slug
    )
    conversation_ended.send(sender=Conversation, conversation=conversation, reason=reason)
    return True


aend_conversation = sync_to_async(end_conversation)
