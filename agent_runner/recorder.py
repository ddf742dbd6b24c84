"""Writes a conversation's transcript to the database without blocking the audio path.

Session events only put a line on a queue (no awaiting, no I/O); one background task
writes the queued lines with Django's async ORM, in order. ``aclose()`` flushes whatever
is still queued, so every ending (including a worker shutdown) keeps the whole record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.db.models import Max
from django.utils import timezone

from voice_widget.models import Turn, TurnRole

logger = logging.getLogger(__name__)

#: Roles of livekit-agents chat messages → transcript roles; other roles are not recorded.
CHAT_ROLES = {"user": TurnRole.USER, "assistant": TurnRole.AGENT}


@dataclass(frozen=True)
class TranscriptLine:
    sequence: int
    role: str
    text: str
    interrupted: bool
    created_at: dt.datetime


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
    ) -> None:
        """Queue one line; never blocks. Empty text is not recorded."""
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
        )
        self._next_sequence += 1
        self._queue.put_nowait(line)

    def add_chat_message(self, message: object) -> None:
        """Queue a livekit-agents ``ChatMessage`` from ``conversation_item_added``."""
        role = CHAT_ROLES.get(getattr(message, "role", ""))
        if role is None:
            return
        self.add(
            role,
            getattr(message, "text_content", None) or "",
            interrupted=bool(getattr(message, "interrupted", False)),
            created_at=getattr(message, "created_at", None),
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
                created_at=line.created_at,
            )
            for line in batch
        ]
        try:
            await Turn.objects.abulk_create(turns)
            self.saved += len(turns)
        except Exception:
            self.failed += len(turns)
            logger.exception(
                "could not save %d transcript lines of conversation %s",
                len(turns),
                self.conversation_id,
            )

    async def aclose(self) -> None:
        """Save everything queued so far, then stop the writer."""
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
