"""Persona → AgentSession plan: the default pipeline and the turn-taking settings."""

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents import AgentSession, inference  # noqa: E402
from livekit.plugins import cartesia, deepgram, openai, silero  # noqa: E402

from agent_runner.pipeline import (  # noqa: E402
    MissingCredentials,
    build_session_plan,
)
from tests.factories import persona_fields  # noqa: E402
from voice_widget.models import Persona  # noqa: E402

pytestmark = pytest.mark.agent

PLACEHOLDER_KEYS = {
    "DEEPGRAM_API_KEY": "dg-placeholder",
    "OPENAI_API_KEY": "sk-placeholder",
    "CARTESIA_API_KEY": "ca-placeholder",
    "AZURE_OPENAI_API_KEY": "az-placeholder",
    "BEY_API_KEY": "bey-placeholder",
}


@pytest.fixture(scope="module")
def vad():
    return silero.VAD.load()


@pytest.fixture
def keys(monkeypatch):
    for name, value in PLACEHOLDER_KEYS.items():
        monkeypatch.setenv(name, value)
    for name in ("OPENAI_COMPATIBLE_API_KEY", "BEY_API_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return PLACEHOLDER_KEYS


def snapshot(**overrides):
    """A persona's snapshot exactly as a conversation stores it, after full_clean()."""
    persona = Persona(**persona_fields(**overrides))
    persona.full_clean(validate_unique=False, validate_constraints=False)
    return persona.snapshot()


def plan_for(vad, **overrides):
    return build_session_plan(snapshot(**overrides), vad=vad)


def test_default_pipeline_is_deepgram_openai_cartesia(keys, vad):
    plan = plan_for(vad, language="en-US", tts_voice="voice-123")
    kwargs = plan.session_kwargs

    stt = kwargs["stt"]
    assert isinstance(stt, deepgram.STT)
    assert stt.model == "nova-3"
    assert stt._opts.language == "en-US"
    assert stt._api_key == "dg-placeholder"

    llm = kwargs["llm"]
    assert isinstance(llm, openai.LLM)
    assert llm.model == "gpt-4o-mini"
    assert llm._client.api_key == "sk-placeholder"
    assert llm._client.base_url.host == "api.openai.com"

    tts = kwargs["tts"]
    assert isinstance(tts, cartesia.TTS)
    assert tts.model == "sonic-2"
    assert tts._opts.voice == "voice-123"
    assert tts._opts.language == "en"
    assert tts._opts.api_key == "ca-placeholder"

    assert kwargs["vad"] is vad
    assert plan.noise_cancellation is None
    assert plan.avatar is None
    assert plan.can_say is True


def test_a_persona_with_only_a_name_runs_with_the_default_voice(keys, vad):
    """What "Add persona" saves from a name alone is a session the worker can build."""
    persona = Persona(name="Nora", slug="nora")
    persona.full_clean(validate_unique=False, validate_constraints=False)
    plan = build_session_plan(persona.snapshot(), vad=vad)
    tts = plan.session_kwargs["tts"]
    assert isinstance(tts, cartesia.TTS)
    assert tts._opts.voice == "9626c31c-bec5-4cca-baa8-f8ba9e84c8bc"  # Jacqueline
    assert plan.can_say is True


def test_default_turn_detection_is_livekits_turn_detector_model_on_the_worker(keys, vad):
    detector = plan_for(vad).session_kwargs["turn_handling"]["turn_detection"]
    assert isinstance(detector, inference.TurnDetector)
    assert detector.model == "turn-detector-v1-mini"  # the local model, not LiveKit Cloud's


@pytest.mark.parametrize("mode", ["vad", "stt"])
def test_string_turn_detection_modes(keys, vad, mode):
    assert plan_for(vad, turn_detection=mode).session_kwargs["turn_handling"]["turn_detection"] == (
        mode
    )


def test_turn_taking_settings_map_to_turn_handling(keys, vad):
    plan = plan_for(
        vad,
        min_endpointing_delay=0.8,
        max_endpointing_delay=6.0,
        allow_interruptions=False,
        min_interruption_duration=1.2,
        min_interruption_words=2,
        false_interruption_timeout=None,
        preemptive_generation=True,
    )
    handling = plan.session_kwargs["turn_handling"]
    assert handling["endpointing"] == {"mode": "fixed", "min_delay": 0.8, "max_delay": 6.0}
    assert handling["interruption"] == {
        "enabled": False,
        "mode": "vad",
        "min_duration": 1.2,
        "min_words": 2,
        "false_interruption_timeout": None,
        "resume_false_interruption": False,
    }
    assert handling["preemptive_generation"] == {"enabled": True}


def test_false_interruption_timeout_resumes_speech(keys, vad):
    interruption = plan_for(vad, false_interruption_timeout=1.5).session_kwargs["turn_handling"][
        "interruption"
    ]
    assert interruption["false_interruption_timeout"] == 1.5
    assert interruption["resume_false_interruption"] is True


async def test_agent_session_accepts_the_plan_without_deprecated_options(keys, vad, recwarn):
    plan = plan_for(vad, min_endpointing_delay=0.7, allow_interruptions=False)
    session = AgentSession(**plan.session_kwargs)
    options = session.options.turn_handling
    assert options["endpointing"]["min_delay"] == 0.7
    assert options["interruption"]["enabled"] is False
    assert options["turn_detection"] is plan.session_kwargs["turn_handling"]["turn_detection"]
    assert session.stt is plan.session_kwargs["stt"]
    assert not [
        w
        for w in recwarn.list
        if "deprecated" in str(w.message).lower() and "turn_handling" in str(w.message)
    ]


def test_vad_threshold_tunes_the_job_process_vad_through_its_public_options(keys):
    # Each job has its own process, whose prewarm loaded this VAD: tuned in place, no copy.
    vad = silero.VAD.load()
    tuned = plan_for(vad, vad_threshold=0.8).session_kwargs["vad"]
    assert tuned is vad
    assert vad._opts.activation_threshold == 0.8
    assert vad._opts.deactivation_threshold == pytest.approx(0.65)


def test_keyterms_go_to_deepgram(keys, vad):
    stt = plan_for(vad, stt_keyterms="Linden Cargo\n\n  Rohloff \n").session_kwargs["stt"]
    assert stt._opts.keyterm == ["Linden Cargo", "Rohloff"]


def test_missing_keys_refuse_to_build(monkeypatch, vad):
    for name in PLACEHOLDER_KEYS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredentials) as excinfo:
        plan_for(vad)
    assert excinfo.value.names == ["DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY"]


def test_snapshot_of_an_older_persona_gets_todays_defaults(keys, vad):
    data = snapshot()
    del data["preemptive_generation"], data["min_interruption_words"]
    handling = build_session_plan(data, vad=vad).session_kwargs["turn_handling"]
    assert handling["preemptive_generation"] == {"enabled": False}
    assert handling["interruption"]["min_words"] == 0


@pytest.mark.django_db
def test_building_a_plan_touches_no_database_and_no_network(
    keys, vad, monkeypatch, django_assert_num_queries
):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("build_session_plan opened a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    persona = snapshot(
        stt_fallback_provider="openai",
        stt_fallback_model="whisper-1",
        llm_provider="azure_openai",
        llm_model="gpt-4o",
        azure_endpoint="https://r.openai.azure.com",
        llm_fallback_provider="livekit",
        llm_fallback_model="openai/gpt-4.1-mini",
        tts_fallback_provider="openai",
        tts_fallback_model="tts-1",
        tts_fallback_voice="alloy",
        noise_cancellation="bvc_telephony",
        avatar_provider="bey",
        avatar_id="b9be11b8",
        turn_detection="audio",
    )
    with django_assert_num_queries(0):
        plan = build_session_plan(persona, vad=vad)
    assert plan.avatar.avatar_id == "b9be11b8"
