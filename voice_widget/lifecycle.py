"""State changes of a conversation that both the web process and the worker make."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from .conf import vw_settings
from .models import Conversation, ConversationStatus, EndReason
from .signals import conversation_ended

logger = logging.getLogger(__name__)

OPEN_STATUSES = [ConversationStatus.CREATED, ConversationStatus.READY, ConversationStatus.ACTIVE]

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
        updated = Conversation.objects.filter(pk=conversation_id, status__in=OPEN_STATUSES).update(
            **changes
        )
    if not updated:
        return False
    conversation = Conversation.objects.select_related("persona").get(pk=conversation_id)
    logger.info(
        "conversation %s ended: %s (persona %s)", conversation.pk, reason, conversation.persona.slug
    )
    conversation_ended.send(sender=Conversation, conversation=conversation, reason=reason)
    return True


aend_conversation = sync_to_async(end_conversation)
