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

Each agent line keeps how long the reply took (:class:`TurnLatency`), from livekit-agents'
``ChatMessage.metrics``: the visitor's line carries the end-of-utterance and transcription
delays, which go on the agent line that answers it, and the agent's line its language model's
time to first token, its speech synthesis' time to first byte and the end-to-end latency. A
realtime model's time to first audio comes from its ``RealtimeModelMetrics`` instead, matched
by response id (before or after the line, whichever comes first).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

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

from .live import LivePublisher

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


#: How many realtime responses' time to first audio are kept waiting for their line.
PENDING_RESPONSES = 32


def _seconds(value: Any) -> float | None:
    """A non-negative duration, or None (livekit-agents uses -1 for "did not happen")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


@dataclass(frozen=True)
class TurnLatency:
    """How long one agent reply took, in seconds; None where a stage did not run."""

    eou_delay: float | None = None
    transcription_delay: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    e2e_latency: float | None = None

    @classmethod
    def of_reply(cls, reply: dict[str, Any], question: dict[str, Any] | None) -> TurnLatency:
        """From an assistant ``ChatMessage.metrics`` and the user one it answers."""
        question = question or {}
        return cls(
            eou_delay=_seconds(question.get("end_of_turn_delay")),
            transcription_delay=_seconds(question.get("transcription_delay")),
            llm_ttft=_seconds(reply.get("llm_node_ttft")),
            tts_ttfb=_seconds(reply.get("tts_node_ttfb")),
            e2e_latency=_seconds(reply.get("e2e_latency")),
        )


@dataclass(frozen=True)
class TranscriptLine:
    sequence: int
    role: str
    text: str
    interrupted: bool
    created_at: dt.datetime
    latency: TurnLatency = field(default_factory=TurnLatency)
    typed: bool = False


@dataclass(frozen=True)
class FirstAudioUpdate:
    """A realtime model's time to first audio that arrived after its line was queued."""

    sequence: int
    seconds: float


class TranscriptRecorder:
    """Queue of transcript lines for one conversation and the task that saves them."""

    def __init__(self, conversation_id: uuid.UUID | str, *, next_sequence: int = 1) -> None:
        self.conversation_id = conversation_id
        self._next_sequence = next_sequence
        self._queue: asyncio.Queue[TranscriptLine | FirstAudioUpdate | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.saved = 0
        self.failed = 0
        self._retry = DatabaseRetry()
        #: The visitor's last line's metrics, until the agent line that answers it.
        self._question_metrics: dict[str, Any] | None = None
        #: Realtime response id → its time to first audio (metrics before the line) or the
        #: sequence of the line waiting for it (line before the metrics).
        self._first_audio: OrderedDict[str, float] = OrderedDict()
        self._awaiting_first_audio: OrderedDict[str, int] = OrderedDict()

        #: Saved lines go on to the admin's live page (best effort, never blocks).
        self.live = LivePublisher(conversation_id)

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
        latency: TurnLatency | None = None,
        typed: bool = False,
    ) -> int | None:
        """Queue one line; never blocks. Empty text is not recorded. Returns the line's
        sequence number (None when not recorded). ``typed``: the visitor typed it
        (``lk.chat``) rather than said it."""
        text = (text or "").strip()
        if not text:
            return None
        if self._closed:
            logger.warning(
                "transcript line after close dropped (conversation %s)", self.conversation_id
            )
            return None
        if isinstance(created_at, (int, float)):
            created_at = dt.datetime.fromtimestamp(created_at, tz=dt.UTC)
        line = TranscriptLine(
            sequence=self._next_sequence,
            role=str(role),
            text=text,
            interrupted=interrupted,
            created_at=created_at or timezone.now(),
            latency=latency or TurnLatency(),
            typed=typed,
        )
        self._next_sequence += 1
        self._queue.put_nowait(line)
        return line.sequence

    def add_chat_message(self, message: object, *, typed: bool = False) -> None:
        """Queue a livekit-agents ``ChatMessage`` from ``conversation_item_added``, with the
        latency its metrics give (agent lines)."""
        role = CHAT_ROLES.get(getattr(message, "role", ""))
        if role is None:
            return
        metrics = dict(getattr(message, "metrics", None) or {})
        text = getattr(message, "text_content", None) or ""
        latency = None
        response_ids = [str(i) for i in metrics.get("provider_request_ids") or []]
        if role == TurnRole.AGENT and text.strip():
            latency = TurnLatency.of_reply(metrics, self._question_metrics)
            self._question_metrics = None
            first_audio = [self._first_audio.pop(i) for i in response_ids if i in self._first_audio]
            if first_audio and latency.tts_ttfb is None:
                latency = replace(latency, tts_ttfb=first_audio[0])
        sequence = self.add(
            role,
            text,
            interrupted=bool(getattr(message, "interrupted", False)),
            created_at=getattr(message, "created_at", None),
            latency=latency,
            typed=typed,
        )
        if sequence is None:
            return
        if role == TurnRole.USER:
            self._question_metrics = metrics
        elif latency is not None and latency.tts_ttfb is None:
            for response_id in response_ids:
                self._remember(self._awaiting_first_audio, response_id, sequence)

    def add_model_metrics(self, event: object) -> None:
        """Take a realtime model's time to first audio from a ``MetricsCollectedEvent``."""
        metrics = getattr(event, "metrics", None)
        if getattr(metrics, "type", None) != "realtime_model_metrics":
            return
        seconds = _seconds(getattr(metrics, "ttft", None))
        response_id = str(getattr(metrics, "request_id", "") or "")
        if seconds is None or not response_id:
            return
        sequence = self._awaiting_first_audio.pop(response_id, None)
        if sequence is None:
            self._remember(self._first_audio, response_id, seconds)
        elif not self._closed:
            self._queue.put_nowait(FirstAudioUpdate(sequence, seconds))

    @staticmethod
    def _remember(pending: OrderedDict[str, Any], key: str, value: Any) -> None:
        pending[key] = value
        while len(pending) > PENDING_RESPONSES:
            pending.popitem(last=False)

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            lines = [item for item in batch if isinstance(item, TranscriptLine)]
            if lines:
                await self._save(lines)
            for item in batch:  # after the lines: an update is about a line queued before it
                if isinstance(item, FirstAudioUpdate):
                    await self._update_first_audio(item)
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
                **asdict(line.latency),
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
            self.live.publish(batch)

    async def _update_first_audio(self, update: FirstAudioUpdate) -> None:
        async def save() -> None:
            await Turn.objects.filter(
                conversation_id=self.conversation_id, sequence=update.sequence
            ).aupdate(tts_ttfb=update.seconds)

        try:
            await self._retry.run(save, f"saving a latency of conversation {self.conversation_id}")
        except Exception:
            logger.error(
                "conversation %s: the time to first audio of line %d could not be saved",
                self.conversation_id,
                update.sequence,
                exc_info=True,
            )

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
