"""Retention: what a conversation keeps once it is older than ``RETENTION_DAYS``.

After the retention period a conversation keeps what the statistics need (persona and
version, times, end reason, usage) and loses everything that says who spoke or what was
said: its transcript lines are deleted; its page URL, both page contexts, the link to the
user and the participant identity (which holds the user's id) are emptied. The row is
marked with ``content_purged_at``, so a reviewer sees why a transcript is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .conf import vw_settings
from .models import Conversation, Turn


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    conversations: int
    turns: int


def retention_cutoff(days: int | None = None, now: datetime | None = None) -> datetime | None:
    """The moment before which content is purged, or None when it is kept forever."""
    days = vw_settings.RETENTION_DAYS if days is None else days
    if days is None:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def expired(cutoff: datetime) -> QuerySet[Conversation]:
    """Conversations created before ``cutoff`` whose content is still there."""
    return Conversation.objects.filter(created_at__lt=cutoff, content_purged_at__isnull=True)


def purge_before(cutoff: datetime, *, dry_run: bool = False) -> PurgeResult:
    """Delete the transcripts and page context of conversations created before ``cutoff``
    (what ``dry_run`` would delete, without deleting). Safe to run again: a purged
    conversation is not counted twice."""
    with transaction.atomic():
        conversations = expired(cutoff)
        turns = Turn.objects.filter(conversation__in=conversations)
        result = PurgeResult(cutoff, conversations.count(), turns.count())
        if not dry_run and result.conversations:
            turns.delete()
            conversations.update(
                page_url="",
                page_context={},
                signed_context={},
                user=None,
                identity="",
                content_purged_at=timezone.now(),
            )
    return result
