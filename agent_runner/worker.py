"""The LiveKit worker: server setup, per-process setup, and the job entrypoint.

LiveKit runs every job in its own process (forked from a forkserver on Linux). Django, the
plugins and the Silero VAD are loaded once, in the forkserver, by ``agent_runner.warmup``,
and shared by every job process; ``prewarm`` takes them over (or loads them itself under
``spawn``). The entrypoint reads the conversation named in the job's metadata, refuses what
it must, builds the session from the persona with ``agent_runner.pipeline`` (while joining
the room), and hands over to ``ConversationRunner``. It returns once the conversation is
running; the job ends when the runner calls ``ctx.shutdown`` (or the worker shuts down).

When the worker shuts a job down (SIGTERM after the drain timeout), livekit-agents closes
the session, awaits ``on_session_end``, and only then disconnects the room and runs the
shutdown callbacks. ``session_end`` is that hook: the conversation's ending (recorded, the
visitor told, the record completed) finishes while the visitor is still in the room.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livekit.agents import JobContext, JobProcess

    from voice_widget.persona_settings import PersonaSettings

logger = logging.getLogger("agent_runner")

VAD_KEY = "vad"
#: Imported once in the forkserver (LiveKit's ``preload_modules``).
WARMUP_MODULE = "agent_runner.warmup"


# -- process setup ---------------------------------------------------------------------


def ensure_django() -> None:
    """Set Django up in a job process (a no-op where it already is), keeping the handler
    that forwards the process's log records to the worker's output."""
    from django.apps import apps

    if not apps.ready:
        from .logs import setup_django_keeping_log_handlers

        setup_django_keeping_log_handlers()


def close_database_connections() -> None:
    """Close this process's database connections and, where Django pools them (PostgreSQL
    with ``OPTIONS["pool"]``), the pools too, with their connections and threads: a process
    forked from this one must open its own (Django opens a pool on first query)."""
    from django.db import connections

    for connection in connections.all():
        connection.close()  # with a pool: back into the pool, still open
        close_pool = getattr(connection, "close_pool", None)  # PostgreSQL's backend only
        if close_pool is not None:
            close_pool()


def prewarm(proc: JobProcess) -> None:
    """Per-process setup LiveKit runs before any job: Django and the VAD, shared from the
    forkserver's warm-up where it ran, and noise cancellation where a persona uses it."""
    # Already imported (a no-op) in a process forked from the forkserver; under spawn, or if
    # the warm-up failed there, this process does it now, before any conversation's event
    # loop runs (the plugins' import held up the agent joining by one to several seconds).
    from . import warmup

    ensure_django()
    from . import pipeline

    if personas_use_noise_cancellation():
        # Not in the warm-up: the plugin starts LiveKit's native runtime (threads), which a
        # forked child would not inherit, so each process that may need it loads its own.
        pipeline.load_noise_cancellation()
    from django.db import connections

    # Jobs query from their own threads: this thread's connection would idle (with a pool,
    # it goes back to this process's pool, which the jobs borrow from).
    connections.close_all()

    try:
        proc.userdata[VAD_KEY] = warmup.shared_vad()
    except Exception:
        logger.exception("the Silero VAD could not be loaded; sessions will run without it")
        proc.userdata[VAD_KEY] = None
    logger.debug(
        "job process %s: Django is set up (warm-up shared from process %s)",
        os.getpid(),
        warmup.warmed_up_in,
    )


def personas_use_noise_cancellation() -> bool:
    """Whether an active persona asks for noise cancellation (then job processes load
    LiveKit's plugin at warm-up, before the room connection it authorizes)."""
    from voice_widget.models import NoiseCancellation, Persona

    try:
        return (
            Persona.objects.filter(is_active=True)
            .exclude(noise_cancellation=NoiseCancellation.OFF)
            .exists()
        )
    except Exception:  # no database yet: load it, as a persona may need it
        logger.warning("could not read the personas; loading noise cancellation anyway")
        return True


# -- what a job needs, injectable ------------------------------------------------------


def _default_plan_factory(persona: PersonaSettings, *, vad: Any) -> Any:
    from .pipeline import build_session_plan

    # ``load_conversation`` checked the keys, once for the job.
    return build_session_plan(persona, vad=vad, check_credentials=False)


def _default_missing_credentials(persona: PersonaSettings) -> list[str]:
    from .pipeline import missing_credentials

    # The avatar's key is left out: without it the conversation continues voice-only.
    return missing_credentials(persona, include_avatar=False)


async def _default_start_avatar(plan: Any, session: Any, room: Any) -> str | None:
    from .avatar import start_avatar

    return await start_avatar(plan, session, room)


@dataclass(frozen=True)
class JobSettings:
    """How this process runs jobs. Production uses the defaults; console mode and tests
    replace parts (a persona's conversation, a plan built from test doubles)."""

    plan_factory: Callable[..., Any] = _default_plan_factory
    missing_credentials: Callable[[PersonaSettings], list[str]] = _default_missing_credentials
    start_avatar: Callable[[Any, Any, Any], Awaitable[str | None]] = _default_start_avatar
    #: Used when the job metadata names no conversation (console mode).
    conversation_id: str | None = None
    #: Start talking without waiting for ``voice_widget.start`` (console mode).
    start_immediately: bool | None = None


_job_settings = JobSettings()

#: The conversation runner of each job running in this process, by job id.
_runners: dict[str, Any] = {}


def configure_jobs(**changes: Any) -> JobSettings:
    """Change how jobs run in this process (used by the console mode)."""
    global _job_settings
    _job_settings = replace(_job_settings, **changes)
    return _job_settings


# -- refusals --------------------------------------------------------------------------


class JobRefused(Exception):
    """The job cannot run this conversation; ``detail`` says why (no personal data)."""

    def __init__(
        self,
        detail: str,
        *,
        mark_failed: bool = True,
        conversation: Any = None,
        unexpected: BaseException | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.mark_failed = mark_failed
        #: The conversation, when it exists: it is marked failed with ``detail``.
        self.conversation = conversation
        #: An error nobody foresaw, logged with its traceback (known causes are one line).
        self.unexpected = unexpected


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _metadata(metadata: str) -> dict[str, Any]:
    if not (metadata or "").strip():
        return {}
    try:
        data = json.loads(metadata)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def conversation_id_from_metadata(metadata: str) -> str | None:
    """The conversation id the token endpoint put in the dispatch metadata."""
    value = _metadata(metadata).get("conversation")
    return str(value) if value else None


def clicked_from_metadata(metadata: str) -> bool:
    """Whether the visitor had clicked to talk before the session was requested (then the
    agent starts as soon as its session runs, without waiting for ``voice_widget.start``)."""
    return _metadata(metadata).get("clicked") is True


async def load_conversation(
    conversation_id: str | None,
    *,
    missing_credentials: Callable[[PersonaSettings], list[str]],
) -> Any:
    """The open conversation with its persona, or ``JobRefused`` saying why not."""
    from voice_widget.models import Conversation

    if not conversation_id:
        raise JobRefused("The job metadata names no conversation.", mark_failed=False)
    if not _is_uuid(conversation_id):
        raise JobRefused("The job metadata holds no valid conversation id.", mark_failed=False)
    conversation = (
        await Conversation.objects.select_related("persona").filter(pk=conversation_id).afirst()
    )
    if conversation is None:
        raise JobRefused(f"Unknown conversation {conversation_id}.", mark_failed=False)
    if not conversation.is_open:
        raise JobRefused(
            "The conversation has already ended.", mark_failed=False, conversation=conversation
        )
    persona = conversation.persona
    if not persona.is_active:
        raise JobRefused(f"Persona {persona.slug!r} is inactive.", conversation=conversation)
    missing = missing_credentials(conversation.persona_settings)
    if missing:
        raise JobRefused(
            f"Missing provider credentials for persona {persona.slug!r}: "
            f"{', '.join(missing)} (set them in the worker's environment).",
            conversation=conversation,
        )
    return conversation


def describe_setup_error(exc: BaseException) -> str:
    """A one-line reason for a session that could not be built."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return f"The voice session could not be built: {text}"[:500]


async def refuse(ctx: JobContext, signals: Any, refusal: JobRefused) -> None:
    """Log why, mark the conversation failed, tell the visitor, and end the job."""
    from voice_widget.lifecycle import aend_conversation
    from voice_widget.models import EndReason

    conversation = refusal.conversation
    conversation_id = getattr(conversation, "pk", None)
    logger.error(
        "job %s refused: %s",
        ctx.job.id,
        refusal.detail,
        exc_info=refusal.unexpected,
    )
    if conversation_id is not None and refusal.mark_failed:
        await aend_conversation(
            conversation_id, EndReason.ERROR, detail=refusal.detail, failed=True
        )
    await signals.announce_end(EndReason.ERROR.value, getattr(conversation, "identity", None))
    ctx.shutdown(reason=f"refused: {refusal.detail}")


async def fail_join(ctx: JobContext, conversation_id: str | None, exc: BaseException) -> None:
    """The agent could not join its room: one ERROR line, the conversation ``failed`` with a
    detail naming the cause, and the job ended (the widget learns it from the status API)."""
    from voice_widget.lifecycle import aend_conversation
    from voice_widget.models import EndReason

    room_name = getattr(ctx.job.room, "name", "") or "?"
    cause = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    detail = f"The agent could not join room {room_name}: {cause}"[:500]
    logger.error(
        "conversation %s: the agent could not join room %s: %s", conversation_id, room_name, cause
    )
    if conversation_id and _is_uuid(conversation_id):
        try:
            await aend_conversation(conversation_id, EndReason.ERROR, detail=detail, failed=True)
        except Exception:
            logger.exception(
                "conversation %s: the failed join could not be recorded", conversation_id
            )
    ctx.shutdown(reason=f"join failed: {cause}")


# -- the entrypoint --------------------------------------------------------------------


async def entrypoint(ctx: JobContext) -> None:
    """LiveKit's job entrypoint (module-level, so it pickles into job processes)."""
    await run_job(ctx, _job_settings)


async def session_end(ctx: JobContext) -> None:
    """LiveKit's ``on_session_end``: the session is closed, the room still connected. Finish
    the conversation's ending here, so the visitor hears of it before the room goes."""
    runner = _runners.pop(ctx.job.id, None)
    if runner is not None:
        await runner.on_job_shutdown("the worker ended the job")


async def prepare_session(
    conversation_id: str | None, settings: JobSettings, vad: Any
) -> tuple[Any, Any, Any]:
    """The conversation, its plan and its ``AgentSession``, or ``JobRefused`` saying why not."""
    from livekit.agents import AgentSession

    conversation = await load_conversation(
        conversation_id, missing_credentials=settings.missing_credentials
    )
    try:
        plan = settings.plan_factory(conversation.persona_settings, vad=vad)
        session = AgentSession(**plan.session_kwargs)
    except Exception as exc:
        detail = describe_setup_error(exc)
        raise JobRefused(detail, conversation=conversation, unexpected=exc) from exc
    return conversation, plan, session


async def run_job(ctx: JobContext, settings: JobSettings) -> Any:
    """Run the conversation of one job; returns its ``ConversationRunner`` (None if refused)."""
    ensure_django()
    from voice_widget.models import EndReason

    from .conversation import ConversationRunner
    from .protocol import AgentEndpoint, RoomSignals

    conversation_id = conversation_id_from_metadata(ctx.job.metadata) or settings.conversation_id
    ctx.log_context_fields = {"conversation": conversation_id}
    # Joining the room takes a while: read the conversation and build its session meanwhile
    # (the plugins' clients alone take a few hundred ms), instead of after.
    prepared = asyncio.ensure_future(
        prepare_session(conversation_id, settings, ctx.proc.userdata.get(VAD_KEY))
    )
    try:
        await ctx.connect()
    except Exception as exc:
        prepared.cancel()
        await asyncio.wait({prepared})
        if not prepared.cancelled():
            prepared.exception()  # retrieved: the failed join is what gets reported
        await fail_join(ctx, conversation_id, exc)
        return None
    signals = RoomSignals(ctx.room)
    # Callable before anything slow: a start that comes early waits instead of failing.
    endpoint = AgentEndpoint(signals)
    endpoint.open()

    try:
        conversation, plan, session = await prepared
    except JobRefused as refusal:
        endpoint.close("The agent cannot take this conversation.")  # the why is for operators
        await refuse(ctx, signals, refusal)
        return None

    runner = ConversationRunner(
        conversation=conversation,
        session=session,
        signals=signals,
        endpoint=endpoint,
        room=ctx.room,
        # The visitor already clicked: greet as soon as the session runs (see the README's
        # start handshake); otherwise the persona's start mode decides.
        start_immediately=True
        if clicked_from_metadata(ctx.job.metadata)
        else settings.start_immediately,
        on_finished=lambda reason: ctx.shutdown(reason=f"conversation ended: {reason}"),
        can_say=plan.can_say,
        session_report=lambda: ctx.make_session_report(session),
    )
    _runners[ctx.job.id] = runner
    # A fallback only: these run after the room has disconnected (``session_end`` is first).
    ctx.add_shutdown_callback(runner.on_job_shutdown)

    notes = []
    try:
        avatar_problem = await settings.start_avatar(plan, session, ctx.room)
    except Exception as exc:  # the avatar is optional: continue voice-only
        logger.exception("job %s: the avatar failed to start", ctx.job.id)
        avatar_problem = f"{type(exc).__name__}: {exc}"
    if avatar_problem:
        notes.append(f"Avatar unavailable: {avatar_problem}; continued voice-only.")

    try:
        await runner.start(
            io_room=ctx.room,
            audio_input=plan.audio_input_options(),
            system_notes=notes,
        )
    except Exception as exc:
        logger.exception("job %s: the conversation could not start", ctx.job.id)
        await runner.request_end(EndReason.ERROR, detail=describe_setup_error(exc))
    return runner


# -- the server ------------------------------------------------------------------------


def server_options(
    *,
    load_threshold: float | None = None,
    num_idle_processes: int | None = None,
    port: int | None = None,
    host: str | None = None,
    drain_timeout: int | None = None,
    job_memory_limit_mb: float | None = None,
) -> dict[str, Any]:
    """Keyword arguments for the ``AgentServer``: LiveKit from ``VOICE_WIDGET``, plus tuning."""
    from voice_widget.conf import vw_settings

    options: dict[str, Any] = {
        "ws_url": vw_settings.LIVEKIT_URL,
        "api_key": vw_settings.LIVEKIT_API_KEY,
        "api_secret": vw_settings.LIVEKIT_API_SECRET,
        "setup_fnc": prewarm,
        # Imported once in the forkserver and shared by the job processes forked from it.
        "preload_modules": [WARMUP_MODULE],
    }
    tuning = {
        "load_threshold": load_threshold,
        "num_idle_processes": num_idle_processes,
        "port": port,
        "host": host,
        "drain_timeout": drain_timeout,
        "job_memory_limit_mb": job_memory_limit_mb,
    }
    options.update({key: value for key, value in tuning.items() if value is not None})
    return options


def build_server(*, agent_name: str, heartbeat: bool = True, **options: Any) -> Any:
    """The ``AgentServer`` running our entrypoint under ``agent_name`` (explicit dispatch)."""
    # The plugins are not imported here: this process runs no job. The warm-up imports them
    # on the forkserver's main thread (job processes under spawn: in ``prewarm``, on theirs),
    # which is where LiveKit requires them to register. The turn detector
    # (``inference.TurnDetector``'s local model) registers no inference runner that this
    # process would have to start: it runs in each job from bundled weights.
    from .server import VoiceWidgetServer

    server = VoiceWidgetServer(
        agent_name=agent_name, heartbeat=heartbeat, **server_options(**options)
    )
    server.rtc_session(entrypoint, agent_name=agent_name, on_session_end=session_end)
    return server
