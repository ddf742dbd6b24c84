"""One conversation, from the agent joining to the record being complete.

``ConversationRunner`` owns the behaviour the README's protocol promises: join muted,
wait for ``voice_widget.start`` (or start at once), greet, enforce the persona's limits,
record every turn, and end exactly once with a reason, the usage and a notice to the
visitor. It works on a real ``AgentSession``; the room is optional, so tests drive the
same code in text mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, APIStatusError, room_io
from livekit.agents.voice.events import (
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
)

from voice_widget.conf import vw_settings
from voice_widget.lifecycle import (
    aend_conversation,
    amark_agent_joined,
    amark_started,
    amark_visitor_left,
    amark_visitor_returned,
)
from voice_widget.models import (
    Conversation,
    EndReason,
    GreetingMode,
    InteractionMode,
    StartMode,
    TurnRole,
)
from voice_widget.persona_settings import PersonaSettings

from . import notices, protocol
from .agent import VoiceWidgetAgent
from .function_tools import build_function_tools, build_page_tools
from .instructions import build_instructions, greeting_instructions
from .live import listen_for_staff_end
from .livekit_private import on_model_metrics
from .recorder import DatabaseRetry, TranscriptRecorder
from .usage import summarize_session_report, summarize_usage

logger = logging.getLogger(__name__)

#: Longest wait for the closing line (max duration) or a goodbye (agent end) to play out.
FAREWELL_TIMEOUT = 20.0
#: Longest wait for the session to close before the record is finished anyway.
SESSION_CLOSE_TIMEOUT = 10.0
#: A caption shown without speech (speech synthesis is what fails) comes with this much
#: silence per character, so the widget's synchronised captions have time to show it.
CAPTION_SECONDS_PER_CHAR = 0.03

#: What each kind of livekit-agents error event is about, for the operator's detail.
_FAILING_PART = {
    "llm_error": "The language model",
    "stt_error": "Speech recognition",
    "tts_error": "Speech synthesis",
    "realtime_model_error": "The realtime model",
}


def describe_model_error(error: Any) -> str:
    """One line for an ``LLMError``/``STTError``/``TTSError``/``RealtimeModelError`` (or a
    bare exception): the provider's message and HTTP status, not the exception's repr."""
    exc = getattr(error, "error", error)
    if isinstance(exc, APIStatusError):
        # The OpenAI SDK's "Error code: 503 - …" would say the status twice.
        message = re.sub(r"^Error code: \d+ - ", "", exc.message)
        text = f"{message} (HTTP {exc.status_code})" if exc.status_code > 0 else message
    else:
        text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return text


class _FailureStreak:
    """Failed turns (unrecoverable model errors) since the agent last answered. The runner
    tells the visitor after each and ends the conversation after
    ``PROVIDER_FAILURES_TO_END`` of them; fewer, and the conversation would otherwise end by
    whatever came next (a shutdown, the visitor leaving) with no word of the failure."""

    def __init__(self) -> None:
        self.count = 0
        self.part = ""
        self.last = ""
        #: Whether speech synthesis failed in this streak (then notices are captions only).
        self.speech_failed = False

    def add(self, error: Any, persona: PersonaSettings) -> None:
        self.count += 1
        kind = getattr(error, "type", "")
        self.part = _FAILING_PART.get(kind, "The voice pipeline")
        self.part += configured_providers(persona, kind)
        self.last = describe_model_error(error)
        self.speech_failed = self.speech_failed or kind == "tts_error"

    def clear(self) -> None:
        self.count = 0
        self.speech_failed = False

    def detail(self) -> str:
        times = "once" if self.count == 1 else f"{self.count} times in a row"
        return f"{self.part} failed {times} and the agent never answered since: {self.last}"


def _stage_models(persona: PersonaSettings, kind: str) -> list[tuple[str, str]]:
    """The (provider, model) pairs of the stage an error ``kind`` is about, fallback last."""
    p = persona
    if kind == "realtime_model_error" or (kind == "llm_error" and p.is_realtime):
        return [(p.realtime_provider, p.realtime_model)]
    if kind == "stt_error":
        return [(p.stt_provider, p.stt_model), (p.stt_fallback_provider, p.stt_fallback_model)]
    if kind == "llm_error":
        return [(p.llm_provider, p.llm_model), (p.llm_fallback_provider, p.llm_fallback_model)]
    if kind == "tts_error":
        return [(p.tts_provider, p.tts_model), (p.tts_fallback_provider, p.tts_fallback_model)]
    return []


def configured_providers(persona: PersonaSettings, kind: str) -> str:
    """`` (openai gpt-4o-mini)`` — the provider and model the persona configured for the
    stage an error ``kind`` is about (with its fallback), as an operator finds them in admin."""
    names = [
        f"{provider.strip()} {model.strip()}".strip()
        for provider, model in _stage_models(persona, kind)
        if provider.strip()
    ]
    return f" ({', then '.join(names)})" if names else ""


async def _silence(seconds: float) -> Any:
    """Silent 24 kHz mono frames: the audio of a line shown as a caption only."""
    rate, frame_samples = 24000, 480
    for _ in range(max(1, int(seconds * rate / frame_samples))):
        yield rtc.AudioFrame(
            data=b"\x00\x00" * frame_samples,
            sample_rate=rate,
            num_channels=1,
            samples_per_channel=frame_samples,
        )


class ConversationRunner:
    """Drives one ``AgentSession`` for one ``Conversation`` and keeps its record."""

    def __init__(
        self,
        *,
        conversation: Conversation,
        session: AgentSession,
        signals: protocol.RoomSignals | None = None,
        endpoint: protocol.AgentEndpoint | None = None,
        room: Any | None = None,
        start_immediately: bool | None = None,
        on_finished: Callable[[str], None] | None = None,
        can_say: bool = True,
        session_report: Callable[[], Any] | None = None,
    ) -> None:
        self.conversation = conversation
        #: The settings this conversation runs with: its snapshot, built once per job.
        self.persona: PersonaSettings = conversation.persona_settings
        self.session = session
        self.signals = signals
        # The job opens the endpoint right after joining; a runner given only signals opens
        # its own, still before anything slow.
        if endpoint is None and signals is not None:
            endpoint = protocol.AgentEndpoint(signals)
            endpoint.open()
        self.endpoint = endpoint
        self.room = room
        if start_immediately is None:
            start_immediately = self.persona.start_mode == StartMode.IMMEDIATE
        self.start_immediately = start_immediately
        self._on_finished = on_finished
        # A realtime model speaking with its own voice has no TTS, so ``session.say`` fails;
        # then verbatim lines (greeting, closing line) are asked of the model instead.
        self.can_say = can_say
        # The job's ``make_session_report``: the final usage comes from it once the session
        # has closed (duration, error counts, close reason besides the models' usage).
        self._session_report = session_report

        self.recorder: TranscriptRecorder | None = None
        self._database = DatabaseRetry()
        self._ending_recorded = False
        self.started = False
        self.end_reason: str | None = None
        self._session_running = False
        self._timers: list[asyncio.Task[None]] = []
        self._departure: asyncio.Task[None] | None = None
        self._end_task: asyncio.Task[None] | None = None
        self._end_begun = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._failures = _FailureStreak()
        #: Ending because the providers stayed down: the visitor is still there to be told.
        self._giving_up = False

        # Texts the visitor typed whose chat message is still to come (to mark it typed).
        self._typed_pending: list[str] = []

    # -- setup -------------------------------------------------------------------------

    def _on_model_metrics(self, metrics: Any) -> None:
        # The recorder is read while the session starts; no model answers before that.
        if self.recorder is not None:
            self.recorder.add_model_metrics(metrics)

    @property
    def conversation_id(self) -> Any:
        return self.conversation.pk

    def build_agent(self) -> VoiceWidgetAgent:
        instructions = build_instructions(
            self.persona,
            signed_context=self.conversation.signed_context,
            page_context=self.conversation.page_context,
            max_context_bytes=vw_settings.MAX_CONTEXT_BYTES,
        )
        tools = build_function_tools(
            list(self.persona.enabled_tools),
            conversation=self.conversation,
            request_end=self.request_end,
        )
        if self.signals is not None:
            # Page tools run in the visitor's browser: without a room (console) there are none.
            tools += build_page_tools(
                list(self.persona.page_tools),
                local_participant=self.signals.local_participant,
                visitor_identity=self.conversation.identity,
                conversation=self.conversation,
                taken=[tool.info.name for tool in tools],
            )
        return VoiceWidgetAgent(instructions=instructions, tools=tools)

    def room_options(
        self, *, audio_input: room_io.AudioInputOptions | None = None
    ) -> room_io.RoomOptions:
        """Room IO bound to this conversation's visitor; text input waits for the start.
        The persona's ``interaction_mode`` says what goes through the room: no audio at all
        when visitors only type, no typed text when they only talk."""
        mode = self.persona.interaction_mode or InteractionMode.VOICE_AND_TEXT
        return room_io.RoomOptions(
            participant_identity=self.conversation.identity,
            audio_input=False if mode == InteractionMode.TEXT else (audio_input or True),
            audio_output=mode != InteractionMode.TEXT,
            text_input=False
            if mode == InteractionMode.VOICE
            else room_io.TextInputOptions(text_input_cb=self.on_text_input),
            # With a resume window the visitor's page may come back (a reload): RoomIO keeps
            # the session and relinks the same identity; we end it if nobody returns.
            close_on_disconnect=not vw_settings.RESUME_WINDOW,
        )

    async def start(
        self,
        *,
        io_room: Any | None = None,
        audio_input: room_io.AudioInputOptions | None = None,
        system_notes: list[str] | None = None,
    ) -> None:
        """Start the session muted and announce readiness; greet at once when the visitor
        clicked before the session was requested or the persona starts immediately."""
        # Read while the session starts (nobody speaks before the start): one wait, not two.
        recording = asyncio.ensure_future(TranscriptRecorder.for_conversation(self.conversation_id))
        self.session.on("conversation_item_added", self._on_conversation_item)
        on_model_metrics(self.session, self._on_model_metrics)  # realtime latency
        self.session.on("close", self._on_session_close)
        self.session.on("error", self._on_session_error)
        if self.room is not None:
            self.room.on("participant_disconnected", self._on_participant_disconnected)
            listen_for_staff_end(self.room, self.conversation_id, self.request_end)
            self.room.on("participant_connected", self._on_participant_connected)

        agent = self.build_agent()
        try:
            if io_room is not None:
                await self.session.start(
                    agent,
                    room=io_room,
                    room_options=self.room_options(audio_input=audio_input),
                )
            else:
                await self.session.start(agent)
            self._session_running = True
            # No await between start() returning and this: no visitor audio reaches the model.
            self._set_audio_input(False)
        finally:
            self.recorder = await recording  # also when the start failed: the ending closes it
        for note in system_notes or []:
            self.recorder.add(TurnRole.SYSTEM, note)

        if self.start_immediately:
            # The visitor clicked before the session was requested (or the persona starts at
            # once): greet now, then tell the widget and record, so neither delays the
            # greeting. A ``voice_widget.start`` that comes meanwhile answers ``ok``.
            began = self._begin_talking()
            if self.endpoint is not None:
                self.endpoint.serve(
                    {protocol.RPC_START: self._rpc_start, protocol.RPC_END: self._rpc_end}
                )
            if self.signals is not None:
                await self.signals.announce_ready(started=began)
            await amark_agent_joined(self.conversation_id)
            logger.info(
                "conversation %s: agent ready and greeting (persona %s)",
                self.conversation_id,
                self.persona.slug,
            )
            if began:
                await self._record_start()
            return

        await amark_agent_joined(self.conversation_id)
        if self.endpoint is not None:
            self.endpoint.serve(
                {protocol.RPC_START: self._rpc_start, protocol.RPC_END: self._rpc_end}
            )
        if self.signals is not None:
            # The attribute tells the widget the agent is ready for voice_widget.start.
            await self.signals.announce_ready()
        logger.info(
            "conversation %s: agent ready (persona %s)",
            self.conversation_id,
            self.persona.slug,
        )
        idle = float(self.persona.preview_idle_seconds)
        if idle > 0:
            self._timers.append(
                asyncio.create_task(self._idle_timer(idle), name="vw_preview_idle_timer")
            )

    # -- talking -----------------------------------------------------------------------

    async def start_talking(self) -> None:
        """The visitor clicked start (``voice_widget.start``): listen and greet."""
        async with self._start_lock:
            began = self._begin_talking()
        if began:
            if self.signals is not None:
                await self.signals.announce_started()
            await self._record_start()

    def _begin_talking(self) -> bool:
        """Listen and greet, once (False when started or ending already)."""
        if self.started or self._end_task is not None:
            return False
        self.started = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._set_audio_input(True)
        self._greet()
        return True

    async def _record_start(self) -> None:
        """After the greeting has begun: the start on record, and the time limit."""
        await amark_started(self.conversation_id)
        logger.info("conversation %s: started", self.conversation_id)
        limit = float(self.persona.max_duration_seconds)
        if limit > 0:
            self._timers.append(
                asyncio.create_task(self._max_duration_timer(limit), name="vw_max_duration")
            )

    def _greet(self) -> None:
        greeting = self.persona.greeting.strip()
        if self.persona.greeting_mode == GreetingMode.GENERATE:
            self.session.generate_reply(instructions=greeting_instructions(self.persona))
        elif greeting:
            self._say_verbatim(greeting)

    def _say_verbatim(self, text: str, *, allow_interruptions: bool = True) -> Any:
        if self.can_say:
            return self.session.say(text, allow_interruptions=allow_interruptions)
        return self.session.generate_reply(
            instructions=f"Say exactly this, word for word, and nothing else: {text}",
            allow_interruptions=allow_interruptions,
        )

    async def on_text_input(self, session: AgentSession, event: room_io.TextInputEvent) -> None:
        """Chat text from the widget; ignored until the visitor has started the conversation."""
        if not self.started or self._end_task is not None:
            logger.info("conversation %s: text before start ignored", self.conversation_id)
            return
        # The current speech may not be interruptible; then the reply queues after it.
        with contextlib.suppress(RuntimeError):
            session.interrupt()
        self._typed_pending.append(event.text.strip())
        session.generate_reply(user_input=event.text)

    def _set_audio_input(self, enabled: bool) -> None:
        # Text-mode sessions have no audio input to switch.
        if self.session.input.audio is not None:
            self.session.input.set_audio_enabled(enabled)

    # -- protocol ----------------------------------------------------------------------

    def _refuse_caller(self, caller_identity: str) -> str | None:
        if caller_identity != self.conversation.identity:
            return protocol.error("forbidden", "Only this conversation's visitor may do that.")
        return None

    async def _rpc_start(self, data: Any) -> str:
        refusal = self._refuse_caller(getattr(data, "caller_identity", ""))
        if refusal:
            return refusal
        payload = protocol.parse_payload(getattr(data, "payload", ""))
        if payload is None:
            return protocol.error("bad_request", "The payload must be a JSON object.")
        if str(payload.get("protocol", protocol.PROTOCOL_VERSION)) != protocol.PROTOCOL_VERSION:
            return protocol.error(
                "unsupported_protocol",
                f"This agent speaks protocol version {protocol.PROTOCOL_VERSION}.",
            )
        if self._end_task is not None:
            return protocol.error("ended", "This conversation has ended.")
        try:
            await self.start_talking()
        except Exception:
            logger.exception("conversation %s: could not start", self.conversation_id)
            return protocol.error("start_failed", "The agent could not start the conversation.")
        return protocol.ok()

    async def _rpc_end(self, data: Any) -> str:
        refusal = self._refuse_caller(getattr(data, "caller_identity", ""))
        if refusal:
            return refusal
        self.request_end(EndReason.CLIENT_END)
        return protocol.ok()

    # -- events ------------------------------------------------------------------------

    def _on_conversation_item(self, event: ConversationItemAddedEvent) -> None:
        if getattr(event.item, "role", None) == "assistant":
            self._failures.clear()
        if self.recorder is not None:
            self.recorder.add_chat_message(event.item, typed=self._was_typed(event.item))

    def _was_typed(self, item: Any) -> bool:
        """Whether a visitor's chat message is one they typed (it carries the typed text)."""
        if getattr(item, "role", None) != "user" or not self._typed_pending:
            return False
        text = (getattr(item, "text_content", None) or "").strip()
        if text in self._typed_pending:
            self._typed_pending.remove(text)
            return True
        return False

    def _on_session_error(self, event: ErrorEvent) -> None:
        # Recoverable errors are retried by livekit-agents (PROVIDER_MAX_RETRY); only a
        # request that failed every try counts, as a failed turn.
        if getattr(event.error, "recoverable", True) or self._end_task is not None:
            return
        self._failures.add(event.error, self.persona)
        logger.warning(
            "conversation %s: %s failed (%s), %d of %d failed turns",
            self.conversation_id,
            self._failures.part,
            type(getattr(event.error, "error", event.error)).__name__,
            self._failures.count,
            vw_settings.PROVIDER_FAILURES_TO_END,
        )
        ending = self._failures.count >= vw_settings.PROVIDER_FAILURES_TO_END
        if ending or getattr(event.error, "type", "") == "realtime_model_error":
            # The provider stays down (and livekit-agents closes the session at a realtime
            # model's first unrecoverable error): end now, with the reason, instead of
            # leaving the visitor talking to nobody until livekit-agents gives up.
            self._giving_up = True
            self.request_end(EndReason.ERROR, detail=self._failures.detail())
        elif self.started:
            try:
                self._tell(notices.PROBLEM)
            except Exception:  # never into livekit-agents' event emitter
                logger.exception("conversation %s: the problem notice failed", self.conversation_id)

    def _tell(self, texts: dict[str, str], *, allow_interruptions: bool = True) -> Any:
        """Say a notice in the persona's language, or only show it as a caption when speech
        synthesis is what fails (or there is none); recorded as the agent's line."""
        text = notices.in_language(texts, self.persona.language)
        if self.recorder is not None:
            self.recorder.add(TurnRole.AGENT, text)
        if self.can_say and not self._failures.speech_failed:
            return self.session.say(
                text, allow_interruptions=allow_interruptions, add_to_chat_ctx=False
            )
        return self.session.say(
            text,
            audio=_silence(CAPTION_SECONDS_PER_CHAR * len(text)),
            allow_interruptions=allow_interruptions,
            add_to_chat_ctx=False,
        )

    def _on_participant_disconnected(self, participant: Any) -> None:
        if getattr(participant, "identity", None) != self.conversation.identity:
            return
        window = float(vw_settings.RESUME_WINDOW or 0)
        if window <= 0 or self._end_task is not None:
            self.request_end(EndReason.PARTICIPANT_LEFT)
        elif self._departure is None:
            logger.info(
                "conversation %s: the visitor left; waiting %gs", self.conversation_id, window
            )
            self._departure = asyncio.create_task(
                self._departure_timer(window), name="vw_resume_window"
            )
            self._timers.append(self._departure)

    def _on_participant_connected(self, participant: Any) -> None:
        if getattr(participant, "identity", None) != self.conversation.identity:
            return
        if self._departure is not None:
            self._departure.cancel()
            self._departure = None
            logger.info("conversation %s: the visitor is back", self.conversation_id)
            self._timers.append(
                asyncio.create_task(
                    amark_visitor_returned(self.conversation_id), name="vw_visitor_returned"
                )
            )

    async def _departure_timer(self, seconds: float) -> None:
        """The visitor's page left: end unless it comes back (a reload) within ``seconds``."""
        if await amark_visitor_left(self.conversation_id):
            await asyncio.sleep(seconds)
        # else: already ended on the web side (the visitor's End): nothing to wait for.
        self.request_end(EndReason.PARTICIPANT_LEFT)

    def _on_session_close(self, event: CloseEvent) -> None:
        self._session_running = False
        if self._end_task is not None:
            return  # we are closing it ourselves
        if event.reason == CloseReason.PARTICIPANT_DISCONNECTED:
            self.request_end(EndReason.PARTICIPANT_LEFT)
        elif event.reason == CloseReason.ERROR:
            error = getattr(event.error, "error", None) or event.error
            logger.error(
                "conversation %s: session failed (%s)",
                self.conversation_id,
                type(error).__name__,
            )
            part = _FAILING_PART.get(getattr(event.error, "type", ""), "The voice pipeline")
            self.request_end(
                EndReason.ERROR, detail=f"{part} failed: {describe_model_error(event.error)}"
            )
        else:
            # Nothing of ours closes the session except ending: the job is being shut down.
            self.request_end(EndReason.WORKER_SHUTDOWN)

    async def on_job_shutdown(self, reason: str = "") -> None:
        """Job shutdown callback: whatever happened, finish the record before the process goes."""
        await self.request_end(EndReason.WORKER_SHUTDOWN, detail=reason)

    async def _idle_timer(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if not self.started:
            self.request_end(EndReason.IDLE_TIMEOUT)

    async def _max_duration_timer(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.request_end(EndReason.MAX_DURATION)

    # -- ending ------------------------------------------------------------------------

    def request_end(self, reason: str, detail: str = "") -> asyncio.Task[None]:
        """End the conversation with ``reason`` (the first reason wins); returns the ending task."""
        if self._end_task is None:
            if self._failures.count and reason not in (EndReason.ERROR, EndReason.AGENT_END):
                # The models failed on every try since the agent last spoke: that is why
                # it ended, whatever came next (the model's own end tool says it works).
                reason, detail = EndReason.ERROR, self._failures.detail()
            self.end_reason = str(EndReason(reason))
            self._end_task = asyncio.create_task(
                self._finish(self.end_reason, detail), name="vw_conversation_end"
            )
            self._end_begun.set()
        return self._end_task

    async def wait_finished(self) -> str:
        """Wait until the conversation has ended and its record is complete."""
        await self._end_begun.wait()
        assert self._end_task is not None
        await asyncio.shield(self._end_task)
        assert self.end_reason is not None
        return self.end_reason

    @property
    def finished(self) -> bool:
        return self._end_task is not None and self._end_task.done()

    async def _finish(self, reason: str, detail: str) -> None:
        logger.info("conversation %s: ending (%s)", self.conversation_id, reason)
        current = asyncio.current_task()
        for timer in self._timers:
            if timer is not current:
                timer.cancel()
        if self.endpoint is not None:
            self.endpoint.close(f"This conversation has ended ({reason}).")
        # Recorded first, before anyone is told: the widget answers the news with an end
        # request of its own, which then cannot overwrite this reason.
        recorded = await self._record_ending(reason, detail)
        try:
            await self._say_farewell(reason)
        except Exception:
            logger.exception("conversation %s: farewell failed", self.conversation_id)
        if self.signals is not None:
            await self.signals.announce_end(recorded, self.conversation.identity)
        try:
            await asyncio.wait_for(self.session.aclose(), timeout=SESSION_CLOSE_TIMEOUT)
        except Exception:
            logger.exception("conversation %s: session did not close cleanly", self.conversation_id)
        self._session_running = False
        try:
            await self._complete_record(detail)
        except Exception:  # e.g. the database is away: the job must still end
            logger.exception(
                "conversation %s: the record could not be completed", self.conversation_id
            )
        finally:
            if self._on_finished is not None:
                self._on_finished(reason)

    def _usage(self) -> dict[str, Any]:
        if self._session_report is not None and not self._session_running:
            try:
                return summarize_session_report(self._session_report())
            except Exception:  # e.g. a recording still running: the usage alone
                logger.exception("conversation %s: no session report", self.conversation_id)
        try:
            return summarize_usage(self.session.usage.model_usage)
        except Exception:
            logger.exception("conversation %s: usage not available", self.conversation_id)
            return {}

    async def _record_ending(self, reason: str, detail: str) -> str:
        """End the conversation in the database with ``reason`` (and the usage so far, for
        ``conversation_ended`` receivers); returns the reason on record, which is another
        one when the web side ended it first."""
        try:
            return await self._database.run(
                lambda: self._end_in_database(reason, detail), "recording the ending"
            )
        except Exception:  # the database stayed away: still end, and say why in the log
            logger.exception(
                "conversation %s: the ending could not be recorded", self.conversation_id
            )
            return reason

    async def _end_in_database(self, reason: str, detail: str) -> str:
        ended = await aend_conversation(
            self.conversation_id,
            reason,
            detail=detail,
            failed=reason == EndReason.ERROR,
            usage=self._usage(),
        )
        self._ending_recorded = True  # by this call, or by the web side before it
        if ended:
            return reason
        recorded = await (
            Conversation.objects.filter(pk=self.conversation_id)
            .values_list("end_reason", flat=True)
            .afirst()
        )
        return recorded or reason

    async def _say_farewell(self, reason: str) -> None:
        if not self._session_running:
            return
        self._set_audio_input(False)
        closing = self.persona.closing_message.strip()
        if self._giving_up and self.started:
            handle = self._tell(notices.GIVING_UP, allow_interruptions=False)
            await asyncio.wait_for(handle.wait_for_playout(), timeout=FAREWELL_TIMEOUT)
        elif reason in (EndReason.MAX_DURATION, EndReason.STAFF_END) and closing and self.started:
            handle = self._say_verbatim(closing, allow_interruptions=False)
            await asyncio.wait_for(handle.wait_for_playout(), timeout=FAREWELL_TIMEOUT)
        elif reason == EndReason.AGENT_END and (speech := self.session.current_speech):
            await asyncio.wait_for(speech.wait_for_playout(), timeout=FAREWELL_TIMEOUT)

    async def _complete_record(self, detail: str) -> None:
        """After the session closed: the last turns and the final usage (also when the web
        side ended the conversation first)."""
        if self.recorder is not None:
            await self.recorder.aclose()
        if not self._ending_recorded and (reason := self.end_reason) is not None:
            # The database was away longer than the bound when the conversation ended: one
            # more round, so that it does not stay active (and count against the limit).
            await self._database.run(
                lambda: self._end_in_database(reason, detail), "recording the ending"
            )
        await self._database.run(
            lambda: Conversation.objects.filter(pk=self.conversation_id).aupdate(
                usage=self._usage()
            ),
            "saving the usage",
        )
