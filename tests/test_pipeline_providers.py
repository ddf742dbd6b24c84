"""Every provider an editor can pick maps to the real plugin object with the persona's options."""

import itertools

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents import AgentSession, inference  # noqa: E402
from livekit.agents import llm as lk_llm  # noqa: E402
from livekit.agents import stt as lk_stt  # noqa: E402
from livekit.agents import tts as lk_tts  # noqa: E402
from livekit.plugins import cartesia, deepgram, openai  # noqa: E402
from livekit.plugins.openai.realtime import RealtimeModel  # noqa: E402
from openai.types.realtime.realtime_audio_input_turn_detection import (  # noqa: E402
    SemanticVad,
    ServerVad,
)

from agent_runner.pipeline import NO_KEY, build_session_plan  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from voice_widget.models import LLMProvider, STTProvider, TTSProvider  # noqa: E402

pytestmark = pytest.mark.agent

# The placeholder keys, the Silero VAD and the persona-settings helper of tests/test_pipeline.py.
keys, vad, settings_for = shared.keys, shared.vad, shared.settings_for

AZURE = {"azure_endpoint": "https://linden.openai.azure.com"}
OLLAMA = "http://127.0.0.1:11434/v1"

# What an editor fills in for each provider; every entry passes full_clean().
STT_SETTINGS = {
    "deepgram": {"stt_provider": "deepgram", "stt_model": "nova-3"},
    "openai": {"stt_provider": "openai", "stt_model": "gpt-4o-transcribe"},
    "livekit": {"stt_provider": "livekit", "stt_model": "deepgram/nova-3"},
}
LLM_SETTINGS = {
    "openai": {"llm_provider": "openai", "llm_model": "gpt-4o"},
    "openai_compatible": {
        "llm_provider": "openai_compatible",
        "llm_model": "llama3.1",
        "llm_base_url": OLLAMA,
    },
    "azure_openai": {"llm_provider": "azure_openai", "llm_model": "gpt-4o", **AZURE},
    "livekit": {"llm_provider": "livekit", "llm_model": "openai/gpt-4.1-mini"},
}
TTS_SETTINGS = {
    "cartesia": {"tts_provider": "cartesia", "tts_model": "sonic-2", "tts_voice": "voice-id"},
    "openai": {"tts_provider": "openai", "tts_model": "gpt-4o-mini-tts", "tts_voice": "coral"},
    "livekit": {"tts_provider": "livekit", "tts_model": "cartesia/sonic-2", "tts_voice": ""},
}
STT_CLASSES = {"deepgram": deepgram.STT, "openai": openai.STT, "livekit": inference.STT}
LLM_CLASSES = {
    "openai": openai.LLM,
    "openai_compatible": openai.LLM,
    "azure_openai": openai.LLM,
    "livekit": inference.LLM,
}
TTS_CLASSES = {"cartesia": cartesia.TTS, "openai": openai.TTS, "livekit": inference.TTS}


def test_settings_tables_cover_every_choice():
    assert set(STT_SETTINGS) == set(STTProvider.values)
    assert set(LLM_SETTINGS) == set(LLMProvider.values)
    assert set(TTS_SETTINGS) == set(TTSProvider.values)


@pytest.mark.parametrize(
    ("stt", "llm", "tts"), list(itertools.product(STT_SETTINGS, LLM_SETTINGS, TTS_SETTINGS))
)
def test_every_provider_combination_builds_its_plugins(keys, vad, stt, llm, tts):
    turn = {"turn_detection": "vad"} if stt == "openai" else {}
    fields = {**STT_SETTINGS[stt], **LLM_SETTINGS[llm], **TTS_SETTINGS[tts], **turn}
    kwargs = build_session_plan(settings_for(**fields), vad=vad).session_kwargs
    assert type(kwargs["stt"]) is STT_CLASSES[stt]
    assert type(kwargs["llm"]) is LLM_CLASSES[llm]
    assert type(kwargs["tts"]) is TTS_CLASSES[tts]
    assert kwargs["stt"].model == fields["stt_model"]
    assert kwargs["llm"].model == fields["llm_model"]
    assert kwargs["tts"].model == fields["tts_model"]


# --- speech-to-text ---------------------------------------------------------------------


def test_deepgram_gets_model_language_and_keyterms(keys, vad):
    stt = build_session_plan(
        settings_for(language="de-DE", stt_model="nova-3-general", stt_keyterms="Linden\nRohloff"),
        vad=vad,
    ).session_kwargs["stt"]
    assert stt._opts.model == "nova-3-general"
    assert stt._opts.language == "de-DE"
    assert stt._opts.keyterm == ["Linden", "Rohloff"]
    assert stt._api_key == keys["DEEPGRAM_API_KEY"]


@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "whisper-1"])
def test_openai_stt_gets_model_and_base_language(keys, vad, model):
    stt = build_session_plan(
        settings_for(
            language="de-DE", stt_provider="openai", stt_model=model, turn_detection="vad"
        ),
        vad=vad,
    ).session_kwargs["stt"]
    assert isinstance(stt, openai.STT)
    assert stt._opts.model == model
    assert stt._opts.languages == ["de"]
    assert stt._client.api_key == keys["OPENAI_API_KEY"]


def test_livekit_inference_stt_uses_the_livekit_credentials(keys, vad, settings):
    stt = build_session_plan(
        settings_for(language="fr", stt_provider="livekit", stt_model="deepgram/nova-3"), vad=vad
    ).session_kwargs["stt"]
    assert isinstance(stt, inference.STT)
    assert stt._opts.model == "deepgram/nova-3"
    assert stt._opts.language == "fr"
    assert stt._opts.api_key == settings.VOICE_WIDGET["LIVEKIT_API_KEY"]
    assert stt._opts.api_secret == settings.VOICE_WIDGET["LIVEKIT_API_SECRET"]


# --- language model -------------------------------------------------------------------------


def test_openai_llm_gets_model_and_temperature(keys, vad):
    llm = build_session_plan(
        settings_for(llm_model="gpt-4o", llm_temperature=0.3), vad=vad
    ).session_kwargs["llm"]
    assert llm._opts.model == "gpt-4o"
    assert llm._opts.temperature == 0.3
    assert str(llm._client.base_url) == "https://api.openai.com/v1/"


def test_empty_temperature_leaves_the_providers_default(keys, vad):
    llm = build_session_plan(settings_for(llm_temperature=None), vad=vad).session_kwargs["llm"]
    assert not isinstance(llm._opts.temperature, float)


def test_openai_compatible_llm_talks_to_the_base_url_without_a_key(keys, vad):
    llm = build_session_plan(
        settings_for(**LLM_SETTINGS["openai_compatible"], llm_temperature=0.6), vad=vad
    ).session_kwargs["llm"]
    assert str(llm._client.base_url) == OLLAMA + "/"
    assert llm._client.api_key == NO_KEY
    assert llm._opts.model == "llama3.1"
    assert llm._opts.temperature == 0.6


def test_openai_compatible_llm_uses_its_own_key_when_set(keys, vad, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "gsk-groq")
    llm = build_session_plan(
        settings_for(
            llm_provider="openai_compatible",
            llm_model="llama-3.3-70b-versatile",
            llm_base_url="https://api.groq.com/openai/v1",
        ),
        vad=vad,
    ).session_kwargs["llm"]
    assert llm._client.api_key == "gsk-groq"
    assert llm._client.base_url.host == "api.groq.com"


def test_azure_llm_gets_endpoint_deployment_and_version(keys, vad):
    llm = build_session_plan(
        settings_for(
            **LLM_SETTINGS["azure_openai"],
            azure_deployment="linden-gpt4o",
            azure_api_version="2024-10-21",
        ),
        vad=vad,
    ).session_kwargs["llm"]
    assert str(llm._client.base_url) == (
        "https://linden.openai.azure.com/openai/deployments/linden-gpt4o/"
    )
    assert llm._client._api_version == "2024-10-21"
    assert llm._client.api_key == keys["AZURE_OPENAI_API_KEY"]
    assert llm._opts.model == "gpt-4o"


def test_azure_deployment_defaults_to_the_model_name(keys, vad):
    llm = build_session_plan(settings_for(**LLM_SETTINGS["azure_openai"]), vad=vad).session_kwargs[
        "llm"
    ]
    assert str(llm._client.base_url).endswith("/openai/deployments/gpt-4o/")


def test_livekit_inference_llm_gets_model_and_temperature(keys, vad, settings):
    llm = build_session_plan(
        settings_for(**LLM_SETTINGS["livekit"], llm_temperature=0.2), vad=vad
    ).session_kwargs["llm"]
    assert llm._opts.model == "openai/gpt-4.1-mini"
    assert llm._opts.extra_kwargs == {"temperature": 0.2}
    assert llm._opts.api_key == settings.VOICE_WIDGET["LIVEKIT_API_KEY"]


# --- text-to-speech -------------------------------------------------------------------------


def test_cartesia_gets_model_voice_language_and_speed(keys, vad):
    tts = build_session_plan(
        settings_for(language="de-DE", tts_model="sonic-2", tts_voice="b9de4a89", tts_speed=1.2),
        vad=vad,
    ).session_kwargs["tts"]
    assert (tts._opts.model, tts._opts.voice, tts._opts.language) == ("sonic-2", "b9de4a89", "de")
    assert tts._opts.speed == 1.2
    assert tts._opts.api_key == keys["CARTESIA_API_KEY"]


def test_openai_tts_gets_voice_speed_and_instructions(keys, vad):
    tts = build_session_plan(
        settings_for(
            **TTS_SETTINGS["openai"], tts_speed=0.9, tts_instructions="Warm and unhurried."
        ),
        vad=vad,
    ).session_kwargs["tts"]
    assert tts._opts.model == "gpt-4o-mini-tts"
    assert tts._opts.voice == "coral"
    assert tts._opts.speed == 0.9
    assert tts._opts.instructions == "Warm and unhurried."
    assert tts._client.api_key == keys["OPENAI_API_KEY"]


def test_livekit_inference_tts_gets_model_voice_and_language(keys, vad):
    tts = build_session_plan(
        settings_for(
            language="es",
            tts_provider="livekit",
            tts_model="cartesia/sonic-2",
            tts_voice="a167e0f3",
        ),
        vad=vad,
    ).session_kwargs["tts"]
    assert (tts._opts.model, tts._opts.voice, tts._opts.language) == (
        "cartesia/sonic-2",
        "a167e0f3",
        "es",
    )


# --- fallbacks ------------------------------------------------------------------------------


def test_fallbacks_wrap_each_stage_in_order(keys, vad):
    plan = build_session_plan(
        settings_for(
            stt_fallback_provider="livekit",
            stt_fallback_model="deepgram/nova-2",
            llm_fallback_provider="azure_openai",
            llm_fallback_model="gpt-4o-mini",
            **AZURE,
            tts_fallback_provider="openai",
            tts_fallback_model="gpt-4o-mini-tts",
            tts_fallback_voice="alloy",
        ),
        vad=vad,
    )
    stt, llm, tts = (plan.session_kwargs[k] for k in ("stt", "llm", "tts"))
    assert isinstance(stt, lk_stt.FallbackAdapter)
    assert [type(s) for s in stt._stt_instances] == [deepgram.STT, inference.STT]
    assert stt._stt_instances[1].model == "deepgram/nova-2"
    assert isinstance(llm, lk_llm.FallbackAdapter)
    assert [i.model for i in llm._llm_instances] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert "azure" in str(llm._llm_instances[1]._client.base_url)
    assert isinstance(tts, lk_tts.FallbackAdapter)
    assert [type(t) for t in tts._tts_instances] == [cartesia.TTS, openai.TTS]
    assert tts._tts_instances[1]._opts.voice == "alloy"


def test_non_streaming_stt_fallback_is_made_streaming_with_the_vad(keys, vad):
    stt = build_session_plan(
        settings_for(stt_fallback_provider="openai", stt_fallback_model="whisper-1"), vad=vad
    ).session_kwargs["stt"]
    assert isinstance(stt, lk_stt.FallbackAdapter)
    assert isinstance(stt._stt_instances[1], lk_stt.StreamAdapter)
    assert stt._stt_instances[1].wrapped_stt.model == "whisper-1"


def test_ollama_fallback_shares_the_base_url(keys, vad):
    llm = build_session_plan(
        settings_for(
            llm_fallback_provider="openai_compatible",
            llm_fallback_model="llama3.1",
            llm_base_url=OLLAMA,
        ),
        vad=vad,
    ).session_kwargs["llm"]
    primary, fallback = llm._llm_instances
    assert primary._client.base_url.host == "api.openai.com"
    assert str(fallback._client.base_url) == OLLAMA + "/"


# --- realtime -------------------------------------------------------------------------------

REALTIME = {
    "pipeline_kind": "realtime",
    "realtime_provider": "openai",
    "realtime_model": "gpt-realtime",
    "turn_detection": "realtime_llm",
}


def test_openai_realtime_with_tuned_server_vad(keys, vad):
    plan = build_session_plan(
        settings_for(
            **REALTIME,
            realtime_voice="marin",
            realtime_vad_threshold=0.7,
            realtime_prefix_padding_ms=400,
            realtime_silence_duration_ms=800,
            noise_cancellation="bvc",
        ),
        vad=vad,
    )
    kwargs = plan.session_kwargs
    model = kwargs["llm"]
    assert type(model) is RealtimeModel
    assert "stt" not in kwargs and "tts" not in kwargs
    opts = model._opts
    assert (opts.model, opts.voice, opts.modalities) == ("gpt-realtime", "marin", ["audio"])
    assert opts.api_key == keys["OPENAI_API_KEY"]
    assert opts.is_azure is False
    assert opts.turn_detection == ServerVad(
        type="server_vad",
        threshold=0.7,
        prefix_padding_ms=400,
        silence_duration_ms=800,
        create_response=True,
        interrupt_response=True,
    )
    assert kwargs["turn_handling"]["turn_detection"] == "realtime_llm"
    assert model.capabilities.turn_detection is True


def test_openai_realtime_with_semantic_vad(keys, vad):
    model = build_session_plan(
        settings_for(
            **REALTIME,
            realtime_turn_detection="semantic_vad",
            realtime_eagerness="low",
        ),
        vad=vad,
    ).session_kwargs["llm"]
    assert model._opts.turn_detection == SemanticVad(
        type="semantic_vad", eagerness="low", create_response=True, interrupt_response=True
    )


def test_realtime_with_livekit_vad_turns_off_the_servers_turn_detection(keys, vad):
    plan = build_session_plan(
        settings_for(**{**REALTIME, "turn_detection": "vad"}, allow_interruptions=False), vad=vad
    )
    assert plan.session_kwargs["llm"]._opts.turn_detection is None
    assert plan.session_kwargs["llm"].capabilities.turn_detection is False
    assert plan.session_kwargs["turn_handling"]["turn_detection"] == "vad"
    assert plan.session_kwargs["turn_handling"]["interruption"]["enabled"] is False
    assert plan.session_kwargs["vad"] is vad


def test_realtime_answering_in_text_speaks_with_the_tts_voice(keys, vad):
    kwargs = build_session_plan(
        settings_for(
            **REALTIME,
            realtime_use_tts=True,
            tts_provider="cartesia",
            tts_model="sonic-2",
            tts_voice="voice-id",
            tts_fallback_provider="openai",
            tts_fallback_model="gpt-4o-mini-tts",
            tts_fallback_voice="alloy",
        ),
        vad=vad,
    ).session_kwargs
    assert kwargs["llm"]._opts.modalities == ["text"]
    assert isinstance(kwargs["tts"], lk_tts.FallbackAdapter)
    assert [type(t) for t in kwargs["tts"]._tts_instances] == [cartesia.TTS, openai.TTS]
    assert kwargs["llm"].capabilities.audio_output is False


def test_azure_realtime_gets_endpoint_and_deployment(keys, vad):
    model = build_session_plan(
        settings_for(
            **{**REALTIME, "realtime_provider": "azure_openai"},
            **AZURE,
            azure_deployment="linden-realtime",
            realtime_silence_duration_ms=1500,
        ),
        vad=vad,
    ).session_kwargs["llm"]
    opts = model._opts
    assert opts.is_azure is True
    assert opts.azure_deployment == "linden-realtime"
    assert opts.base_url == "https://linden.openai.azure.com/openai"
    assert opts.api_key == keys["AZURE_OPENAI_API_KEY"]
    assert opts.turn_detection.silence_duration_ms == 1500


def test_azure_realtime_deployment_defaults_to_the_model(keys, vad):
    model = build_session_plan(
        settings_for(**{**REALTIME, "realtime_provider": "azure_openai"}, **AZURE), vad=vad
    ).session_kwargs["llm"]
    assert model._opts.azure_deployment == "gpt-realtime"


async def test_agent_session_accepts_a_realtime_plan(keys, vad):
    plan = build_session_plan(settings_for(**REALTIME, realtime_voice="cedar"), vad=vad)
    session = AgentSession(**plan.session_kwargs)
    assert session.llm is plan.session_kwargs["llm"]
    assert session.options.turn_handling["turn_detection"] == "realtime_llm"


# --- turn detection -------------------------------------------------------------------------


def test_audio_turn_detector_runs_on_the_worker(keys, vad):
    detector = build_session_plan(settings_for(turn_detection="audio"), vad=vad).session_kwargs[
        "turn_handling"
    ]["turn_detection"]
    assert isinstance(detector, inference.TurnDetector)
    assert detector.model == "turn-detector-v1-mini"


# --- matrices: realtime variants and one fallback per provider ------------------------------

REALTIME_TURNS = {
    "server_vad": {"turn_detection": "realtime_llm", "realtime_turn_detection": "server_vad"},
    "semantic_vad": {"turn_detection": "realtime_llm", "realtime_turn_detection": "semantic_vad"},
    "livekit_vad": {"turn_detection": "vad"},
}
REALTIME_VOICES = {
    "model": {},
    **{name: {"realtime_use_tts": True, **s} for name, s in TTS_SETTINGS.items()},
}
TURN_TYPES = {"server_vad": ServerVad, "semantic_vad": SemanticVad, "livekit_vad": type(None)}


@pytest.mark.parametrize(
    ("provider", "turns", "voice"),
    list(itertools.product(["openai", "azure_openai"], REALTIME_TURNS, REALTIME_VOICES)),
)
def test_every_realtime_combination_builds(keys, vad, provider, turns, voice):
    fields = {
        **REALTIME,
        "realtime_provider": provider,
        **(AZURE if provider == "azure_openai" else {}),
        **REALTIME_TURNS[turns],
        **REALTIME_VOICES[voice],
    }
    plan = build_session_plan(settings_for(**fields), vad=vad)
    kwargs = plan.session_kwargs
    model = kwargs["llm"]
    assert type(model) is RealtimeModel
    assert model._opts.is_azure is (provider == "azure_openai")
    assert type(model._opts.turn_detection) is TURN_TYPES[turns]
    assert kwargs["turn_handling"]["turn_detection"] == REALTIME_TURNS[turns]["turn_detection"]
    if voice == "model":
        assert "tts" not in kwargs
        assert model._opts.modalities == ["audio"]
        # livekit-agents' say() needs a TTS or a realtime model that supports it
        assert plan.can_say is model.capabilities.supports_say is False
    else:
        assert type(kwargs["tts"]) is TTS_CLASSES[voice]
        assert model._opts.modalities == ["text"]
        assert plan.can_say is True


FALLBACKS = [
    ("stt", "deepgram", "nova-2"),
    ("stt", "openai", "whisper-1"),
    ("stt", "livekit", "deepgram/nova-3"),
    ("llm", "openai", "gpt-4o"),
    ("llm", "openai_compatible", "llama3.1"),
    ("llm", "azure_openai", "gpt-4o-mini"),
    ("llm", "livekit", "openai/gpt-4.1-mini"),
    ("tts", "cartesia", "sonic-english"),
    ("tts", "openai", "tts-1"),
    ("tts", "livekit", "cartesia/sonic-2"),
]
ADAPTERS = {
    "stt": (lk_stt.FallbackAdapter, "_stt_instances", STT_CLASSES),
    "llm": (lk_llm.FallbackAdapter, "_llm_instances", LLM_CLASSES),
    "tts": (lk_tts.FallbackAdapter, "_tts_instances", TTS_CLASSES),
}


@pytest.mark.parametrize(("stage", "provider", "model"), FALLBACKS)
def test_every_provider_can_be_a_fallback(keys, vad, stage, provider, model):
    fields = {f"{stage}_fallback_provider": provider, f"{stage}_fallback_model": model}
    if stage == "tts":
        fields["tts_fallback_voice"] = "alloy"
    if provider == "openai_compatible":
        fields["llm_base_url"] = OLLAMA
    if provider == "azure_openai":
        fields.update(AZURE)
    adapter_class, attribute, classes = ADAPTERS[stage]
    adapter = build_session_plan(settings_for(**fields), vad=vad).session_kwargs[stage]
    assert isinstance(adapter, adapter_class)
    primary, fallback = getattr(adapter, attribute)
    if isinstance(fallback, lk_stt.StreamAdapter):  # OpenAI STT does not stream
        fallback = fallback.wrapped_stt
    assert type(fallback) is classes[provider]
    assert fallback.model == model
    assert primary.model == {"stt": "nova-3", "llm": "gpt-4o-mini", "tts": "sonic-2"}[stage]
