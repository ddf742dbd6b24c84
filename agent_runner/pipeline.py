"""Persona → ``AgentSession``: one pure mapping from a persona's settings to session arguments.

``build_session_plan(persona, vad=...)`` reads a conversation's ``PersonaSettings`` (its
persona snapshot as one typed object) and returns the real plugin objects the worker hands to
``AgentSession(**plan.session_kwargs)``, the noise-cancellation selector for the room's audio
input, and the avatar to start. It touches no database and no network: plugin clients
connect lazily, on first use.

Each stage is a small dispatch table (provider → builder), so a new provider is one function
and one table entry. Importing this module registers the plugins, which LiveKit requires to
happen on the main thread: the worker imports it before it starts serving jobs. The turn
detector is ``livekit.agents.inference.TurnDetector``'s local model, which ships with
livekit-agents (``livekit-local-inference``) and registers no inference runner.

In the job entrypoint::

    plan = build_session_plan(conversation.persona_settings, vad=ctx.proc.userdata["vad"])
    session = AgentSession(**plan.session_kwargs)
    avatar_failure = await start_avatar(plan, session, ctx.room)  # before session.start
    await session.start(
        agent, room=ctx.room, room_options=RoomOptions(audio_input=plan.audio_input_options())
    )
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livekit import rtc
from livekit.agents import NOT_GIVEN, APIConnectOptions, inference, room_io
from livekit.agents import llm as lk_llm
from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.plugins import (
    bey,  # noqa: F401 (registers the plugin; used by agent_runner.avatar)
    cartesia,
    deepgram,
    openai,
    silero,
)
from livekit.plugins.openai.realtime import RealtimeModel
from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad, ServerVad

from voice_widget.conf import vw_settings
from voice_widget.models import (
    InteractionMode,
    NoiseCancellation,
    RealtimeTurnDetection,
    SemanticEagerness,
    TurnDetection,
    turn_detector_knows,
)
from voice_widget.persona_settings import PersonaSettings
from voice_widget.providers import (
    AZURE_OPENAI,
    CARTESIA,
    DEEPGRAM,
    LIVEKIT,
    OPENAI,
    OPENAI_COMPATIBLE,
)

from .credentials import (
    livekit_inference_credentials,
    missing_credentials,
    provider_api_url,
    provider_key,
)

if TYPE_CHECKING:
    from livekit.agents.voice.room_io.types import NoiseCancellationParams

logger = logging.getLogger(__name__)

__all__ = [
    "AvatarPlan",
    "MissingCredentials",
    "NoiseCancellationSelector",
    "SessionPlan",
    "build_session_plan",
    "build_text_session_plan",
    "missing_credentials",
]

#: Placeholder key for OpenAI-compatible servers that want none (Ollama): the client needs one.
NO_KEY = "no-key-needed"


class MissingCredentials(RuntimeError):
    """The persona's providers need keys this worker does not have."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(f"missing provider credentials: {', '.join(names)}")


@dataclass
class AvatarPlan:
    """Which avatar to start for a conversation; keys are read when it starts."""

    provider: str
    avatar_id: str
    api_url: str | None = None
    #: Seconds for the provider's API to accept the session (all retries included).
    start_timeout: float = 30.0
    #: Seconds to wait for the avatar to join the room and publish video.
    join_timeout: float = 20.0
    #: Retries of the provider's API call (connection errors and 5xx answers).
    max_retry: int = 1
    retry_interval: float = 1.0
    timeout: float = 10.0


@dataclass
class SessionPlan:
    session_kwargs: dict[str, Any]
    noise_cancellation: Any | None
    avatar: AvatarPlan | None
    #: A typed conversation: the room's audio input and output stay off.
    text_only: bool = False

    @property
    def can_say(self) -> bool:
        """Whether ``session.say(text)`` works: it needs a TTS, unless nothing is spoken (a
        typed conversation writes the text). A realtime model speaking with its own voice
        cannot read a text verbatim; ask it with ``generate_reply`` instead."""
        return self.text_only or self.session_kwargs.get("tts") is not None

    def audio_input_options(self) -> room_io.AudioInputOptions:
        """The room's audio input with this plan's noise cancellation (per participant kind)."""
        if self.noise_cancellation is None:
            return room_io.AudioInputOptions()
        # With a selector LiveKit wants the gain control set explicitly; BVC does its own.
        return room_io.AudioInputOptions(
            noise_cancellation=self.noise_cancellation, auto_gain_control=False
        )


def _given(value: Any) -> Any:
    """The setting's value, or NOT_GIVEN when empty (so the provider's default applies)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return NOT_GIVEN
    return value.strip() if isinstance(value, str) else value


# --- speech-to-text -----------------------------------------------------------------------


def _deepgram_stt(p: PersonaSettings, model: str) -> lk_stt.STT:
    return deepgram.STT(
        model=model,
        language=p.language,
        keyterm=p.keyterms or NOT_GIVEN,
        api_key=provider_key(DEEPGRAM),
    )


def _openai_stt(p: PersonaSettings, model: str) -> lk_stt.STT:
    return openai.STT(model=model, language=p.base_language, api_key=provider_key(OPENAI))


def _livekit_stt(p: PersonaSettings, model: str) -> lk_stt.STT:
    api_key, api_secret = livekit_inference_credentials()
    return inference.STT(model=model, language=p.language, api_key=api_key, api_secret=api_secret)


STT_BUILDERS: dict[str, Callable[[PersonaSettings, str], lk_stt.STT]] = {
    DEEPGRAM: _deepgram_stt,
    OPENAI: _openai_stt,
    LIVEKIT: _livekit_stt,
}


# --- language model -----------------------------------------------------------------------


def _openai_llm(p: PersonaSettings, model: str) -> lk_llm.LLM:
    return openai.LLM(
        model=model, temperature=_given(p.llm_temperature), api_key=provider_key(OPENAI)
    )


def _openai_compatible_llm(p: PersonaSettings, model: str) -> lk_llm.LLM:
    return openai.LLM(
        model=model,
        base_url=p.llm_base_url,
        api_key=provider_key(OPENAI_COMPATIBLE) or NO_KEY,
        temperature=_given(p.llm_temperature),
    )


def _azure_llm(p: PersonaSettings, model: str) -> lk_llm.LLM:
    return openai.LLM.with_azure(
        model=model,
        azure_endpoint=p.azure_endpoint,
        azure_deployment=p.azure_deployment.strip() or model,
        api_version=p.azure_api_version.strip() or None,
        api_key=provider_key(AZURE_OPENAI),
        temperature=_given(p.llm_temperature),
    )


def _livekit_llm(p: PersonaSettings, model: str) -> lk_llm.LLM:
    api_key, api_secret = livekit_inference_credentials()
    extra = {} if p.llm_temperature is None else {"temperature": p.llm_temperature}
    return inference.LLM(model=model, api_key=api_key, api_secret=api_secret, extra_kwargs=extra)


LLM_BUILDERS: dict[str, Callable[[PersonaSettings, str], lk_llm.LLM]] = {
    OPENAI: _openai_llm,
    OPENAI_COMPATIBLE: _openai_compatible_llm,
    AZURE_OPENAI: _azure_llm,
    LIVEKIT: _livekit_llm,
}


# --- text-to-speech -----------------------------------------------------------------------


def _cartesia_tts(p: PersonaSettings, model: str, voice: str) -> lk_tts.TTS:
    return cartesia.TTS(
        model=model,
        voice=voice,
        language=p.base_language,
        speed=p.tts_speed,
        api_key=provider_key(CARTESIA),
    )


def _openai_tts(p: PersonaSettings, model: str, voice: str) -> lk_tts.TTS:
    return openai.TTS(
        model=model,
        voice=voice,
        speed=p.tts_speed or 1.0,
        instructions=_given(p.tts_instructions),
        api_key=provider_key(OPENAI),
    )


def _livekit_tts(p: PersonaSettings, model: str, voice: str) -> lk_tts.TTS:
    api_key, api_secret = livekit_inference_credentials()
    return inference.TTS(
        model=model,
        voice=voice or NOT_GIVEN,
        language=p.base_language,
        api_key=api_key,
        api_secret=api_secret,
    )


TTS_BUILDERS: dict[str, Callable[[PersonaSettings, str, str], lk_tts.TTS]] = {
    CARTESIA: _cartesia_tts,
    OPENAI: _openai_tts,
    LIVEKIT: _livekit_tts,
}


def _build_stt(p: PersonaSettings, vad: Any) -> lk_stt.STT:
    primary = STT_BUILDERS[p.stt_provider](p, p.stt_model.strip())
    if not p.stt_fallback_provider:
        return primary
    fallback = STT_BUILDERS[p.stt_fallback_provider](p, p.stt_fallback_model.strip())
    # A VAD lets the adapter wrap non-streaming recognisers (OpenAI) in a StreamAdapter.
    return lk_stt.FallbackAdapter([primary, fallback], vad=vad)


def _build_llm(p: PersonaSettings) -> lk_llm.LLM:
    primary = LLM_BUILDERS[p.llm_provider](p, p.llm_model.strip())
    if not p.llm_fallback_provider:
        return primary
    fallback = LLM_BUILDERS[p.llm_fallback_provider](p, p.llm_fallback_model.strip())
    return lk_llm.FallbackAdapter([primary, fallback])


def _build_tts(p: PersonaSettings) -> lk_tts.TTS:
    primary = TTS_BUILDERS[p.tts_provider](p, p.tts_model.strip(), p.tts_voice.strip())
    if not p.tts_fallback_provider:
        return primary
    fallback = TTS_BUILDERS[p.tts_fallback_provider](
        p, p.tts_fallback_model.strip(), p.tts_fallback_voice.strip()
    )
    return lk_tts.FallbackAdapter([primary, fallback])


# --- realtime speech-to-speech ------------------------------------------------------------


def _realtime_turn_detection(p: PersonaSettings) -> ServerVad | SemanticVad | None:
    """The realtime model's own turn detection, or None when LiveKit's VAD decides turns."""
    if p.turn_detection != TurnDetection.REALTIME:
        return None
    if p.realtime_turn_detection == RealtimeTurnDetection.SEMANTIC_VAD:
        return SemanticVad(
            type="semantic_vad",
            eagerness=p.realtime_eagerness or SemanticEagerness.AUTO.value,
            create_response=True,
            interrupt_response=bool(p.allow_interruptions),
        )
    options: dict[str, Any] = {}
    if p.realtime_vad_threshold is not None:
        options["threshold"] = p.realtime_vad_threshold
    if p.realtime_prefix_padding_ms is not None:
        options["prefix_padding_ms"] = p.realtime_prefix_padding_ms
    if p.realtime_silence_duration_ms is not None:
        options["silence_duration_ms"] = p.realtime_silence_duration_ms
    return ServerVad(
        type="server_vad",
        create_response=True,
        interrupt_response=bool(p.allow_interruptions),
        **options,
    )


def _realtime_options(p: PersonaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        # Text only when the TTS voice speaks the answers.
        "modalities": ["text"] if p.realtime_use_tts else ["audio"],
        "turn_detection": _realtime_turn_detection(p),
    }
    if p.realtime_voice.strip():
        options["voice"] = p.realtime_voice.strip()
    return options


def _openai_realtime(p: PersonaSettings) -> lk_llm.RealtimeModel:
    return RealtimeModel(
        model=p.realtime_model.strip(), api_key=provider_key(OPENAI), **_realtime_options(p)
    )


def _azure_realtime(p: PersonaSettings) -> lk_llm.RealtimeModel:
    return RealtimeModel.with_azure(
        azure_deployment=p.azure_deployment.strip() or p.realtime_model.strip(),
        azure_endpoint=p.azure_endpoint,
        api_key=provider_key(AZURE_OPENAI),
        **_realtime_options(p),
    )


REALTIME_BUILDERS: dict[str, Callable[[PersonaSettings], lk_llm.RealtimeModel]] = {
    OPENAI: _openai_realtime,
    AZURE_OPENAI: _azure_realtime,
}


# --- turn-taking --------------------------------------------------------------------------


#: Persona choices that mean LiveKit's turn-detector model: ``audio``, and the text models of
#: the retired turn-detector plugin, which snapshots taken before migration 0003 may still name.
TURN_DETECTOR_MODEL_CHOICES = frozenset([TurnDetection.AUDIO.value, "multilingual", "english"])


def _turn_detection(p: PersonaSettings) -> Any:
    kind = p.turn_detection
    if kind in TURN_DETECTOR_MODEL_CHOICES:
        if not turn_detector_knows(p.language):
            return TurnDetection.VAD.value  # the model would judge it by English pauses
        # LiveKit's audio end-of-turn model, run on the worker: its weights ship with
        # livekit-agents, so nothing is downloaded and no LiveKit Cloud is needed ("v1" is the
        # cloud model, which the default would pick in dev mode).
        return inference.TurnDetector(version="v1-mini")
    return kind  # "vad", "stt" or "realtime_llm": LiveKit's names for the same modes


def _turn_handling(p: PersonaSettings) -> dict[str, Any]:
    timeout = p.false_interruption_timeout
    return {
        "turn_detection": _turn_detection(p),
        "endpointing": {
            "mode": "fixed",
            "min_delay": p.min_endpointing_delay,
            "max_delay": p.max_endpointing_delay,
        },
        "interruption": {
            "enabled": bool(p.allow_interruptions),
            # Voice activity decides interruptions: works on any LiveKit server.
            "mode": "vad",
            "min_duration": p.min_interruption_duration,
            "min_words": p.min_interruption_words,
            "false_interruption_timeout": timeout,
            "resume_false_interruption": timeout is not None,
        },
        "preemptive_generation": {"enabled": bool(p.preemptive_generation)},
    }


def _vad_for(p: PersonaSettings, vad: Any) -> Any:
    """The process's Silero VAD, tuned to the persona's threshold.

    Tuned in place: LiveKit runs each job in a process (or executor) of its own, whose
    ``prewarm`` loaded this VAD for that one job.
    """
    if not isinstance(vad, silero.VAD):
        return vad
    threshold = p.vad_threshold
    if threshold is not None:
        vad.update_options(
            activation_threshold=threshold,
            deactivation_threshold=max(threshold - 0.15, 0.01),
        )
    return vad


# --- noise cancellation and avatar --------------------------------------------------------


class NoiseCancellationSelector:
    """Chooses the noise-cancellation model per participant (``AudioInputOptions`` selector).

    ``bvc``: background voice cancellation for everyone. ``bvc_telephony``: the same, but the
    model trained on phone audio for SIP callers. Both need LiveKit Cloud.
    """

    def __init__(self, mode: str) -> None:
        if mode not in (NoiseCancellation.BVC, NoiseCancellation.BVC_TELEPHONY):
            raise ValueError(f"unknown noise cancellation mode {mode!r}")
        self.mode = str(mode)

    def __repr__(self) -> str:
        return f"NoiseCancellationSelector({self.mode!r})"

    def __call__(self, params: NoiseCancellationParams) -> rtc.NoiseCancellationOptions:
        if (
            self.mode == NoiseCancellation.BVC_TELEPHONY
            and params.participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP
        ):
            return load_noise_cancellation().BVCTelephony()
        return load_noise_cancellation().BVC()


def load_noise_cancellation() -> Any:
    """LiveKit's noise-cancellation plugin, loaded on first need.

    Loading it registers a native audio filter that asks the LiveKit server for authorization
    on every room connection and, away from LiveKit Cloud, prints two plain-text errors per
    conversation; so only the processes of personas that use it load it.
    """
    from livekit.plugins import noise_cancellation

    return noise_cancellation


def _noise_cancellation(p: PersonaSettings) -> NoiseCancellationSelector | None:
    mode = p.noise_cancellation or NoiseCancellation.OFF
    if mode == NoiseCancellation.OFF:
        return None
    load_noise_cancellation()  # before the session starts, if warm-up did not load it
    return NoiseCancellationSelector(mode)


def _avatar(p: PersonaSettings) -> AvatarPlan | None:
    if not p.has_avatar:
        return None
    return AvatarPlan(
        provider=p.avatar_provider,
        avatar_id=p.avatar_id.strip(),
        api_url=provider_api_url(p.avatar_provider),
    )


# --- the retry budget ---------------------------------------------------------------------


def provider_connect_options() -> SessionConnectOptions:
    """The session's retry budget for its providers, from ``VOICE_WIDGET``'s ``PROVIDER_*``.

    Every request of speech recognition, the language model and speech synthesis is tried
    ``PROVIDER_MAX_RETRY`` more times (livekit-agents retries the first at once, then every
    ``PROVIDER_RETRY_INTERVAL`` seconds), each try bounded by ``PROVIDER_TIMEOUT``. A request
    that still fails is a failed turn; ``ConversationRunner`` tells the visitor and ends the
    conversation after ``PROVIDER_FAILURES_TO_END`` in a row. livekit-agents' own limit is set
    one above, so the session stays open for the runner's last words.
    """
    per_request = APIConnectOptions(
        max_retry=vw_settings.PROVIDER_MAX_RETRY,
        retry_interval=float(vw_settings.PROVIDER_RETRY_INTERVAL),
        timeout=float(vw_settings.PROVIDER_TIMEOUT),
    )
    return SessionConnectOptions(
        stt_conn_options=per_request,
        llm_conn_options=per_request,
        tts_conn_options=per_request,
        max_unrecoverable_errors=vw_settings.PROVIDER_FAILURES_TO_END,
    )


# --- the plan -----------------------------------------------------------------------------


def build_session_plan(
    persona: PersonaSettings, *, vad: Any, check_credentials: bool = True
) -> SessionPlan:
    """Map a conversation's persona settings to ``AgentSession`` kwargs, noise cancellation
    and avatar.

    ``vad`` is the Silero VAD the worker loaded once per process. Raises ``MissingCredentials``
    when a provider's key is absent (the avatar's is checked when it starts);
    ``check_credentials=False`` when the caller has checked them already (the worker does, once
    per job, before anything is built). A type-only persona (``interaction_mode`` ``text``)
    gets the typed plan of ``build_text_session_plan``.
    """
    p = persona
    if p.interaction_mode == InteractionMode.TEXT:
        return build_text_session_plan(p)
    if check_credentials and (missing := missing_credentials(p, include_avatar=False)):
        raise MissingCredentials(missing)
    kwargs: dict[str, Any] = {}
    if p.is_realtime:
        kwargs["llm"] = REALTIME_BUILDERS[p.realtime_provider](p)
        if p.realtime_use_tts:
            kwargs["tts"] = _build_tts(p)
    else:
        kwargs["stt"] = _build_stt(p, vad)
        kwargs["llm"] = _build_llm(p)
        kwargs["tts"] = _build_tts(p)
    kwargs["vad"] = _vad_for(p, vad)
    kwargs["turn_handling"] = _turn_handling(p)
    kwargs["conn_options"] = provider_connect_options()
    return SessionPlan(
        session_kwargs=kwargs,
        noise_cancellation=_noise_cancellation(p),
        avatar=_avatar(p),
    )


def build_text_session_plan(persona: PersonaSettings) -> SessionPlan:
    """The plan of a typed conversation (the console's ``--text``): the language model
    alone, with no speech recognition, speech synthesis, VAD, turn detector or avatar, so
    it needs no audio library and no speech provider's key."""
    p = persona
    missing = missing_credentials(p, include_avatar=False, text_only=True)
    if missing:
        raise MissingCredentials(missing)
    if p.is_realtime:
        model: Any = REALTIME_BUILDERS[p.realtime_provider](p)
    else:
        model = _build_llm(p)
    return SessionPlan(
        session_kwargs={
            "llm": model,
            "vad": None,
            "turn_handling": {"turn_detection": None},
            "conn_options": provider_connect_options(),
        },
        noise_cancellation=None,
        avatar=None,
        text_only=True,
    )
