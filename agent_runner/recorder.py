"""Writes a conversation's transcript to the database without blocking the audio path.

Session events only put a line on a queue (no awaiting, no I/O); one background task
writes the queued lines with Django's async ORM, in order. ``aclose()`` flushes whatever
is still queued, so every ending (including a worker shutdown) keeps the whole record.

When the database is away for a moment, a batch that could not be saved is tried again
with backoff (``RETRY_FIRST_DELAY`` doubling up to ``RETRY_MAX_DELAY``) while later lines
wait behind it, so the order and the sequence numbers stay as assigned. Only when the
database stays away longer than ``RETRY_FOR_SECONDS`` is the batch dropped, with one ERROR
naming the conversation and how many lines were lost. :class:`DatabaseRetry` is also what
the conversation runner uses to record the ending.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
)
from django.db.models import Max
from django.utils import timezone

from voice_widget.models import Turn, TurnRole

logger = logging.getLogger(__name__)

#: Roles of livekit-agents chat messages → transcript roles; other roles are not recorded.
CHAT_ROLES = {"user": TurnRole.USER, "assistant": TurnRole.AGENT}

#: How long (seconds) database work is retried while the database is away, counted from
#: the first failure of an outage; after that the work is given up (logged as an ERROR).
RETRY_FOR_SECONDS = 60.0
#: The first pause before a retry (seconds); it doubles up to ``RETRY_MAX_DELAY``.
RETRY_FIRST_DELAY = 0.5
RETRY_MAX_DELAY = 5.0

T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """A database error worth retrying: the connection or the server, not the data."""
    return isinstance(error, (OperationalError, InterfaceError)) or type(error) is DatabaseError


def _reset_connections() -> None:
    try:  # a connection the outage broke is dropped, so the next try connects afresh
        close_old_connections()
    except Exception:
        logger.debug("closing the broken database connection failed", exc_info=True)


class DatabaseRetry:
    """Runs database work again while the database is away, for at most
    ``RETRY_FOR_SECONDS`` per outage (an outage ends with the first success)."""

    def __init__(self) -> None:
        self.outage_started: float | None = None

    async def run(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """The result of ``operation()``; raises its last error when the error is not a
        transient database error or the outage lasted longer than the bound."""
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                result = await operation()
            except DatabaseError as error:
                if not is_transient(error):
                    raise
                now = time.monotonic()
                if self.outage_started is None:
                    self.outage_started = now
                    logger.warning(
                        "%s failed (%s); retrying for up to %s s", what, error, RETRY_FOR_SECONDS
                    )
                remaining = self.outage_started + RETRY_FOR_SECONDS - now
                if remaining <= 0:
                    raise
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, RETRY_MAX_DELAY)
                await sync_to_async(_reset_connections, thread_sensitive=True)()
            else:
                self.outage_started = None
                return result


@dataclass(frozen=True)
class TranscriptLine:
    sequence: int
    role: str
    text: str
    interrupted: bool
    created_at: dt.datetime
    typed: bool = False


class TranscriptRecorder:
    """Queue of transcript lines for one conversation and the task that saves them."""

    def __init__(self, conversation_id: uuid.UUID | str, *, next_sequence: int = 1) -> None:
        self.conversation_id = conversation_id
        self._next_sequence = next_sequence
        self._queue: asyncio.Queue[TranscriptLine | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.saved = 0
        self.failed = 0
        self._retry = DatabaseRetry()

    @classmethod
    async def for_conversation(cls, conversation_id: uuid.UUID | str) -> TranscriptRecorder:
        """A started recorder that continues after the lines already saved (if any)."""
        last = await Turn.objects.filter(conversation_id=conversation_id).aaggregate(
            last=Max("sequence")
        )
        recorder = cls(conversation_id, next_sequence=(last["last"] or 0) + 1)
        recorder.start()
        return recorder

    def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="vw_transcript_writer")

    def add(
        self,
        role: str,
        text: str,
        *,
        interrupted: bool = False,
        created_at: dt.datetime | float | None = None,
        typed: bool = False,
    ) -> None:
        """Queue one line; never blocks. Empty text is not recorded. ``typed``: the visitor
        typed it (``lk.chat``) rather than said it."""
        text = (text or "").strip()
        if not text:
            return
        if self._closed:
            logger.warning(
                "transcript line after close dropped (conversation %s)", self.conversation_id
            )
            return
        if isinstance(created_at, (int, float)):
            created_at = dt.datetime.fromtimestamp(created_at, tz=dt.UTC)
        line = TranscriptLine(
            sequence=self._next_sequence,
            role=str(role),
            text=text,
            interrupted=interrupted,
            created_at=created_at or timezone.now(),
            typed=typed,
        )
        self._next_sequence += 1
        self._queue.put_nowait(line)

    def add_chat_message(self, message: object, *, typed: bool = False) -> None:
        """Queue a livekit-agents ``ChatMessage`` from ``conversation_item_added``."""
        role = CHAT_ROLES.get(getattr(message, "role", ""))
        if role is None:
            return
        self.add(
            role,
            getattr(message, "text_content", None) or "",
            interrupted=bool(getattr(message, "interrupted", False)),
            created_at=getattr(message, "created_at", None),
            typed=typed,
        )

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            lines = [line for line in batch if line is not None]
            if lines:
                await self._save(lines)
            if None in batch:
                return

    async def _save(self, batch: list[TranscriptLine]) -> None:
        turns = [
            Turn(
                conversation_id=self.conversation_id,
                sequence=line.sequence,
                role=line.role,
                text=line.text,
                interrupted=line.interrupted,
                typed=line.typed,
                created_at=line.created_at,
            )
            for line in batch
        ]
        what = f"saving {len(turns)} transcript lines of conversation {self.conversation_id}"
        try:
            await self._retry.run(lambda: self._insert(turns), what)
        except Exception:
            self.failed += len(turns)
            logger.error(
                "conversation %s: %d transcript lines (sequence %d to %d) lost: they could not"
                " be saved within %s s",
                self.conversation_id,
                len(turns),
                batch[0].sequence,
                batch[-1].sequence,
                RETRY_FOR_SECONDS,
                exc_info=True,
            )
        else:
            self.saved += len(turns)

    @staticmethod
    async def _insert(turns: list[Turn]) -> None:
        try:
            await Turn.objects.abulk_create(turns)
        except IntegrityError:
            # These sequence numbers are taken: an earlier try was saved after all (only its
            # answer got lost). Keep what is there and add whatever is missing, once.
            await Turn.objects.abulk_create(turns, ignore_conflicts=True)

    async def aclose(self) -> None:
        """Save everything queued so far (retrying as above, so bounded by
        ``RETRY_FOR_SECONDS`` per outage), then stop the writer."""
        if self._closed:
            if self._writer is not None:
                await asyncio.shield(self._writer)
            return
        self._closed = True
        if self._writer is None:
            self.start()
        assert self._writer is not None
        self._queue.put_nowait(None)
        await asyncio.shield(self._writer)
