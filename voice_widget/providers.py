"""The provider catalogue: everything the project knows about each provider, in one place.

Per provider: the stages it serves (speech-to-text, language model, text-to-speech, realtime,
avatar) and its name in each, the environment variables its key comes from, what it can do
(key terms, voice instructions, end-of-turn detection), the models and voices editors are
offered, and (further down) its list prices. ``Persona``'s provider choices and ``clean()``
rules, the credential checks, the admin's help and pickers read it; the worker keeps only a
``{provider: builder}`` table per stage (``agent_runner.pipeline``, ``agent_runner.avatar``).
Adding a provider is one ``Provider`` entry here and one builder there.

Imports nothing from LiveKit, so web processes read it. The model and voice lists are short and
curated suggestions: any other model name or voice id the provider accepts may be typed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# Provider ids: the values stored in a persona's ``*_provider`` fields.
DEEPGRAM = "deepgram"
CARTESIA = "cartesia"
OPENAI = "openai"
OPENAI_COMPATIBLE = "openai_compatible"
AZURE_OPENAI = "azure_openai"
LIVEKIT = "livekit"
BEY = "bey"
#: The avatar choice that means "voice only" (no provider).
NO_AVATAR = "none"

# Stages: the ``<stage>_provider`` field of a persona that names the provider.
STT = "stt"
LLM = "llm"
TTS = "tts"
REALTIME = "realtime"
AVATAR = "avatar"
STAGES = (STT, LLM, TTS, REALTIME, AVATAR)


@dataclass(frozen=True)
class Voice:
    """One voice a provider offers. ``languages`` empty: it speaks every language."""

    id: str
    name: str
    description: str = ""
    languages: tuple[str, ...] = ()

    def speaks(self, language: str) -> bool:
        return not self.languages or _base(language) in self.languages

    @property
    def label(self) -> str:
        parts = [self.name, self.description]
        if self.languages:
            parts.append("/".join(self.languages))
        return " · ".join(str(part) for part in parts if part)


@dataclass(frozen=True)
class VoiceCatalogue:
    """A provider's curated voices, its default per language, and its voice library."""

    provider: str
    voices: tuple[Voice, ...]
    library_url: str
    library_name: str
    #: base language → voice id; "" is for every other language. No entry: no default.
    defaults: dict[str, str] = field(default_factory=dict)

    def for_language(self, language: str) -> list[Voice]:
        """The voices that speak ``language`` first, then the rest."""
        speaking = [voice for voice in self.voices if voice.speaks(language)]
        return speaking + [voice for voice in self.voices if voice not in speaking]

    def default_voice(self, language: str) -> str:
        return self.defaults.get(_base(language), self.defaults.get("", ""))

    def name_of(self, voice_id: str) -> str:
        return next((voice.name for voice in self.voices if voice.id == voice_id), "")


def _base(language: str) -> str:
    return (language or "").lower().split("-")[0]


# Cartesia's voices are multilingual (sonic-2 and later); those below were made for the
# languages named. More, with samples: the voice library at play.cartesia.ai/voices.
CARTESIA_VOICES = (
    Voice(
        "9626c31c-bec5-4cca-baa8-f8ba9e84c8bc", "Jacqueline", _("confident young woman"), ("en",)
    ),
    Voice("a167e0f3-df7e-4d52-a9c3-f949145efdab", "Blake", _("energetic man"), ("en",)),
    Voice("f786b574-daa5-4673-aa0c-cbe3e8534c02", "Katie", _("friendly woman"), ("en",)),
    Voice(
        "3f4ade23-6eb4-4279-ab05-6a144947c4d5",
        "German Conversational Woman",
        _("friendly, casual"),
        ("de",),
    ),
    Voice(
        "119e03e4-0705-43c9-b3ac-a658ce2b6639", "German Reporter Woman", _("neutral, even"), ("de",)
    ),
    Voice(
        "a249eaff-1e96-4d2c-b23b-12efa4f66f41",
        "French Conversational Lady",
        _("gentle, casual"),
        ("fr",),
    ),
    Voice(
        "8832a0b5-47b2-4751-bb22-6a8e2149303d", "French Narrator Lady", _("velvety, calm"), ("fr",)
    ),
    Voice("5c5ad5e7-1020-476b-8b91-fdcbe9cc313c", "Daniela", _("calm Mexican woman"), ("es",)),
    Voice("6b92f628-be90-497c-8f4c-3b035002df71", "Kenji", _("Japanese man"), ("ja",)),
)

# OpenAI's voices speak every language the model knows. ballad, verse, marin and cedar need
# gpt-4o-mini-tts (tts-1 has the others).
OPENAI_TTS_VOICES = tuple(
    Voice(name, name.capitalize(), description)
    for name, description in (
        ("alloy", _("neutral")),
        ("ash", _("clear, male")),
        ("ballad", _("warm, expressive (gpt-4o-mini-tts)")),
        ("coral", _("bright, female")),
        ("echo", _("calm, male")),
        ("fable", _("storyteller")),
        ("nova", _("lively, female")),
        ("onyx", _("deep, male")),
        ("sage", _("soft, female")),
        ("shimmer", _("gentle, female")),
        ("verse", _("versatile (gpt-4o-mini-tts)")),
        ("marin", _("natural, female (gpt-4o-mini-tts)")),
        ("cedar", _("natural, male (gpt-4o-mini-tts)")),
    )
)

# LiveKit Inference takes the voice of the provider in the model name: a Cartesia id for
# cartesia/…, a name for deepgram/aura-2 or rime/arcana. Empty: LiveKit's default voice.
LIVEKIT_TTS_VOICES = (
    *CARTESIA_VOICES[:3],
    Voice("athena", "Athena", _("professional woman, for deepgram/aura-2"), ("en",)),
    Voice("apollo", "Apollo", _("casual man, for deepgram/aura-2"), ("en",)),
    Voice("luna", "Luna", _("excitable woman, for rime/arcana"), ("en",)),
)

REALTIME_VOICES = tuple(
    Voice(name, name.capitalize(), description)
    for name, description in (
        ("marin", _("natural, female (recommended)")),
        ("cedar", _("natural, male (recommended)")),
        ("alloy", _("neutral")),
        ("ash", _("clear, male")),
        ("ballad", _("warm, expressive")),
        ("coral", _("bright, female")),
        ("echo", _("calm, male")),
        ("sage", _("soft, female")),
        ("shimmer", _("gentle, female")),
        ("verse", _("versatile")),
    )
)

CARTESIA_VOICE_CATALOGUE = VoiceCatalogue(
    CARTESIA,
    CARTESIA_VOICES,
    library_url="https://play.cartesia.ai/voices",
    library_name="Cartesia",
    defaults={
        "": "9626c31c-bec5-4cca-baa8-f8ba9e84c8bc",
        "de": "3f4ade23-6eb4-4279-ab05-6a144947c4d5",
        "fr": "a249eaff-1e96-4d2c-b23b-12efa4f66f41",
        "es": "5c5ad5e7-1020-476b-8b91-fdcbe9cc313c",
        "ja": "6b92f628-be90-497c-8f4c-3b035002df71",
    },
)
OPENAI_TTS_VOICE_CATALOGUE = VoiceCatalogue(
    OPENAI,
    OPENAI_TTS_VOICES,
    library_url="https://platform.openai.com/docs/guides/text-to-speech#voice-options",
    library_name="OpenAI",
    defaults={"": "coral"},
)
LIVEKIT_TTS_VOICE_CATALOGUE = VoiceCatalogue(
    LIVEKIT,
    LIVEKIT_TTS_VOICES,
    library_url="https://docs.livekit.io/agents/models/tts/",
    library_name="LiveKit Inference",
)
#: Realtime providers all speak with OpenAI's realtime voices (Azure hosts the same models).
REALTIME_VOICE_CATALOGUE = VoiceCatalogue(
    OPENAI,
    REALTIME_VOICES,
    library_url="https://platform.openai.com/docs/guides/realtime",
    library_name="OpenAI Realtime",
)


# --- The catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """One provider: the stages it serves and what the project knows about it."""

    id: str
    name: Promise | str
    #: The stages it serves, in the order editors meet them.
    stages: tuple[str, ...]
    #: Variables its key is read from (all needed: a key, or a key and its secret).
    env_vars: tuple[str, ...] = ()
    #: Variables of a key it works without but uses when set (an OpenAI-compatible server's).
    optional_env_vars: tuple[str, ...] = ()
    #: Its name in a stage's choices where that differs from ``name``.
    stage_names: dict[str, Promise | str] = field(default_factory=dict)
    #: Suggested model names per stage (any other name the provider accepts works too).
    models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Curated voices per stage that speaks (tts, realtime).
    voices: dict[str, VoiceCatalogue] = field(default_factory=dict)
    #: Text-to-speech: the editor must name a voice (no provider default).
    needs_voice: bool = False
    #: Speech-to-text: takes key terms (``stt_keyterms``).
    keyterms: bool = False
    #: Text-to-speech: takes voice instructions (``tts_instructions``).
    voice_instructions: bool = False
    #: Speech-to-text: reports the end of a turn (the ``stt`` turn detection).
    detects_end_of_turn: bool = True
    #: Models are written provider/model (a gateway to other providers' models).
    routes_models: bool = False
    #: Persona fields this provider cannot work without (e.g. ``llm_base_url``).
    required_fields: tuple[str, ...] = ()
    #: Persona fields only this provider uses, per stage (admin shows them when it is chosen).
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Where its API lives, unless the variable ``api_url_env_var`` names another address.
    api_url: str = ""
    api_url_env_var: str = ""

    def name_in(self, stage: str) -> Promise | str:
        return self.stage_names.get(stage, self.name)

    def fields_in(self, stage: str) -> tuple[str, ...]:
        """The persona fields that apply when this provider serves ``stage``."""
        capabilities = (("stt_keyterms",) if stage == STT and self.keyterms else ()) + (
            ("tts_instructions",) if stage == TTS and self.voice_instructions else ()
        )
        return self.fields.get(stage, ()) + capabilities


PROVIDERS: dict[str, Provider] = {
    provider.id: provider
    for provider in (
        Provider(
            DEEPGRAM,
            _("Deepgram"),
            stages=(STT,),
            env_vars=("DEEPGRAM_API_KEY",),
            models={STT: ("nova-3", "nova-2")},
            keyterms=True,
        ),
        Provider(
            CARTESIA,
            _("Cartesia"),
            stages=(TTS,),
            env_vars=("CARTESIA_API_KEY",),
            models={TTS: ("sonic-2", "sonic-3", "sonic-turbo")},
            voices={TTS: CARTESIA_VOICE_CATALOGUE},
            needs_voice=True,
        ),
        Provider(
            OPENAI,
            _("OpenAI"),
            stages=(STT, LLM, TTS, REALTIME),
            env_vars=("OPENAI_API_KEY",),
            stage_names={REALTIME: _("OpenAI Realtime")},
            models={
                STT: ("gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1"),
                LLM: ("gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1", "gpt-4o", "gpt-5-mini", "gpt-5"),
                TTS: ("gpt-4o-mini-tts", "tts-1", "tts-1-hd"),
                REALTIME: ("gpt-realtime", "gpt-realtime-mini"),
            },
            voices={TTS: OPENAI_TTS_VOICE_CATALOGUE, REALTIME: REALTIME_VOICE_CATALOGUE},
            needs_voice=True,
            voice_instructions=True,
            detects_end_of_turn=False,
        ),
        Provider(
            OPENAI_COMPATIBLE,
            _("OpenAI-compatible server"),
            stages=(LLM,),
            # Ollama or vLLM often need no key; a hosted one (Groq…) reads this when set.
            optional_env_vars=("OPENAI_COMPATIBLE_API_KEY",),
            stage_names={LLM: _("OpenAI-compatible server (Ollama, vLLM, Groq…)")},
            models={LLM: ("llama3.1", "qwen2.5", "mistral")},
            required_fields=("llm_base_url",),
            fields={LLM: ("llm_base_url",)},
        ),
        Provider(
            AZURE_OPENAI,
            _("Azure OpenAI"),
            stages=(LLM, REALTIME),
            env_vars=("AZURE_OPENAI_API_KEY",),
            stage_names={REALTIME: _("Azure OpenAI Realtime")},
            models={LLM: ("gpt-4o-mini", "gpt-4o", "gpt-4.1"), REALTIME: ("gpt-realtime",)},
            voices={REALTIME: REALTIME_VOICE_CATALOGUE},
            required_fields=("azure_endpoint",),
            fields={
                LLM: ("azure_endpoint", "azure_deployment", "azure_api_version"),
                # Azure Realtime uses the current API: no version to choose.
                REALTIME: ("azure_endpoint", "azure_deployment"),
            },
        ),
        Provider(
            LIVEKIT,
            _("LiveKit Inference"),
            stages=(STT, LLM, TTS),
            # A LiveKit Cloud project's pair (not the livekit-server --dev one).
            env_vars=("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"),
            models={
                STT: ("deepgram/nova-3", "assemblyai/universal-streaming", "cartesia/ink-whisper"),
                LLM: ("openai/gpt-4.1-mini", "openai/gpt-4o-mini", "google/gemini-2.5-flash"),
                TTS: ("cartesia/sonic-2", "deepgram/aura-2", "rime/arcana"),
            },
            voices={TTS: LIVEKIT_TTS_VOICE_CATALOGUE},
            routes_models=True,
        ),
        Provider(
            BEY,
            _("Beyond Presence"),
            stages=(AVATAR,),
            env_vars=("BEY_API_KEY",),
            api_url="https://api.bey.dev",
            api_url_env_var="BEY_API_URL",
        ),
    )
}


def get(provider: str) -> Provider | None:
    """The catalogue's entry for a provider id (None for "" or an unknown id)."""
    return PROVIDERS.get(provider or "")


def serving(stage: str) -> list[Provider]:
    """The providers of one stage, in catalogue order."""
    return [provider for provider in PROVIDERS.values() if stage in provider.stages]


def with_capability(stage: str, capability: str) -> list[Provider]:
    """The providers of ``stage`` whose flag ``capability`` (e.g. ``keyterms``) is set."""
    return [provider for provider in serving(stage) if getattr(provider, capability)]


def names(providers: Iterable[Provider], stage: str) -> str:
    """Their names in ``stage``, for an editor's message: "Deepgram", "OpenAI or Cartesia"."""
    labels = [str(provider.name_in(stage)) for provider in providers]
    if len(labels) < 2:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} {_('or')} {labels[-1]}"


def env_vars(provider: str) -> tuple[str, ...]:
    """The variables a provider's key is read from (none for an unknown id)."""
    entry = get(provider)
    return entry.env_vars if entry else ()


def key_env_var(provider: str) -> str | None:
    """The variable a provider's key is read from: its first required one, else its optional
    one (an OpenAI-compatible server's); None when it has none."""
    entry = get(provider)
    names = (entry.env_vars or entry.optional_env_vars) if entry else ()
    return names[0] if names else None


def choices(stage: str, name: str, *, none: tuple[str, Promise | str] | None = None) -> type:
    """``models.TextChoices`` of a stage's providers, member names the ids in capitals.

    ``none``: a first choice that names no provider (the avatar's "voice only").
    """
    members = [(str(none[0]).upper(), none)] if none else []
    members += [(p.id.upper(), (p.id, p.name_in(stage))) for p in serving(stage)]
    return models.TextChoices(name, members, module="voice_widget.models")


def provider_fields() -> dict[str, dict[str, list[str]]]:
    """Stage → provider id → the persona fields that apply with it (the admin form's rules)."""
    return {
        stage: {p.id: list(p.fields_in(stage)) for p in serving(stage) if p.fields_in(stage)}
        for stage in STAGES
    }


def voice_catalogues(stage: str) -> dict[str, VoiceCatalogue]:
    """Provider id → its curated voices, for the providers of ``stage`` that have some."""
    return {p.id: p.voices[stage] for p in serving(stage) if stage in p.voices}


def model_suggestions(stage: str) -> dict[str, tuple[str, ...]]:
    """Provider id → suggested model names, for the providers of ``stage``."""
    return {p.id: p.models[stage] for p in serving(stage) if stage in p.models}


#: Provider id → curated voices (the admin's voice picker, ``default_tts_voice``).
TTS_VOICES: dict[str, VoiceCatalogue] = voice_catalogues(TTS)
REALTIME_VOICE_CATALOGUES: dict[str, VoiceCatalogue] = voice_catalogues(REALTIME)


def default_tts_voice(provider: str, language: str, model: str = "") -> str:
    """The voice a persona speaks with when the editor chose none ("" when the provider picks).

    LiveKit Inference passes the voice to the provider named in the model, so only a
    ``cartesia/…`` model gets a Cartesia voice; the others speak with LiveKit's default.
    """
    if provider == LIVEKIT:
        if model.strip().startswith(f"{CARTESIA}/"):
            return TTS_VOICES[CARTESIA].default_voice(language)
        return ""
    catalogue = TTS_VOICES.get(provider)
    return catalogue.default_voice(language) if catalogue else ""


# --- Prices ------------------------------------------------------------------------------------
#
# List prices in US dollars, as the providers published them for pay-as-you-go use in 2025
# (openai.com/api/pricing, deepgram.com/pricing, cartesia.ai/pricing, beyondpresence.ai).
# They are estimates for the cost report and the daily budgets, not an invoice: plans,
# discounts and new models differ, so a site overrides or adds entries in
# VOICE_WIDGET["PRICES"] (same keys, same rate names). Keys are "provider/model"; a key with
# the provider alone prices all of its models (e.g. "openai_compatible": self-hosted, free).
#
# Rate names: per 1M tokens "input_per_1m", "cached_input_per_1m", "output_per_1m" (text),
# "audio_input_per_1m", "cached_audio_input_per_1m", "audio_output_per_1m" (realtime audio
# tokens); "per_1k_characters" (text-to-speech); "per_minute" (speech-to-text audio,
# text-to-speech audio, or an avatar's time in the room).

PRICE_RATES = (
    "input_per_1m",
    "cached_input_per_1m",
    "output_per_1m",
    "audio_input_per_1m",
    "cached_audio_input_per_1m",
    "audio_output_per_1m",
    "per_1k_characters",
    "per_minute",
)


def _llm(inp: str, cached: str, out: str) -> dict[str, str]:
    return {"input_per_1m": inp, "cached_input_per_1m": cached, "output_per_1m": out}


def _realtime(text: tuple[str, str, str], audio: tuple[str, str, str]) -> dict[str, str]:
    return {
        **_llm(*text),
        "audio_input_per_1m": audio[0],
        "cached_audio_input_per_1m": audio[1],
        "audio_output_per_1m": audio[2],
    }


DEFAULT_PRICES: dict[str, dict[str, str]] = {
    # OpenAI language models (input, cached input, output per 1M tokens).
    "openai/gpt-4o-mini": _llm("0.15", "0.075", "0.60"),
    "openai/gpt-4o": _llm("2.50", "1.25", "10.00"),
    "openai/gpt-4.1": _llm("2.00", "0.50", "8.00"),
    "openai/gpt-4.1-mini": _llm("0.40", "0.10", "1.60"),
    "openai/gpt-4.1-nano": _llm("0.10", "0.025", "0.40"),
    "openai/gpt-5": _llm("1.25", "0.125", "10.00"),
    "openai/gpt-5-mini": _llm("0.25", "0.025", "2.00"),
    "openai/gpt-5-nano": _llm("0.05", "0.005", "0.40"),
    # OpenAI realtime models: text and audio tokens are priced apart.
    "openai/gpt-realtime": _realtime(("4.00", "0.40", "16.00"), ("32.00", "0.40", "64.00")),
    "openai/gpt-realtime-mini": _realtime(("0.60", "0.06", "2.40"), ("10.00", "0.30", "20.00")),
    "openai/gpt-4o-realtime-preview": _realtime(
        ("5.00", "2.50", "20.00"), ("40.00", "2.50", "80.00")
    ),
    "openai/gpt-4o-mini-realtime-preview": _realtime(
        ("0.60", "0.30", "2.40"), ("10.00", "0.30", "20.00")
    ),
    # Speech-to-text, per minute of audio.
    "openai/whisper-1": {"per_minute": "0.006"},
    "openai/gpt-4o-transcribe": {"per_minute": "0.006"},
    "openai/gpt-4o-mini-transcribe": {"per_minute": "0.003"},
    "deepgram/nova-3": {"per_minute": "0.0077"},
    "deepgram/nova-2": {"per_minute": "0.0058"},
    # Text-to-speech: per 1K characters, or per minute of audio for gpt-4o-mini-tts
    # (OpenAI's own per-minute estimate of its token prices).
    "openai/tts-1": {"per_1k_characters": "0.015"},
    "openai/tts-1-hd": {"per_1k_characters": "0.030"},
    "openai/gpt-4o-mini-tts": {"per_minute": "0.015"},
    # Cartesia bills credits, one per character; this is the Startup plan's rate.
    "cartesia/sonic-2": {"per_1k_characters": "0.039"},
    "cartesia/sonic-3": {"per_1k_characters": "0.039"},
    "cartesia/sonic-turbo": {"per_1k_characters": "0.039"},
    "deepgram/aura-2": {"per_1k_characters": "0.030"},
    # Avatars, per minute in the room (a live preview counts too).
    "bey": {"per_minute": "0.175"},
}

#: Providers priced as another: Azure OpenAI's standard deployments cost what OpenAI's do.
PRICE_ALIASES = {"azure_openai": "openai"}

#: What livekit-agents reports as a usage row's provider (a plugin's ``provider``), as ours.
USAGE_PROVIDER_NAMES = {
    "api.openai.com": "openai",
    "openai": "openai",
    "deepgram": "deepgram",
    "cartesia": "cartesia",
    "livekit": "livekit",
}
