"""The seeded example personas (README "Persona recipes") build the sessions they promise."""

import io

import pytest

pytest.importorskip("livekit.agents")

from django.core.management import call_command  # noqa: E402
from livekit.agents import inference  # noqa: E402
from livekit.agents import llm as lk_llm  # noqa: E402
from livekit.plugins import cartesia, deepgram, openai  # noqa: E402
from livekit.plugins.openai.realtime import RealtimeModel  # noqa: E402

from agent_runner.pipeline import (  # noqa: E402
    NoiseCancellationSelector,
    build_session_plan,
)
from example_site.shop.management.commands.seed_demo import DEMO_PERSONAS  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from voice_widget.models import Persona  # noqa: E402
from voice_widget.persona_settings import PersonaSettings  # noqa: E402

pytestmark = [pytest.mark.agent, pytest.mark.django_db]

keys, vad = shared.keys, shared.vad

RECIPES = [
    "nora-avatar",
    "roleplay-customer",
    "patient-consultant",
    "local-llm",
    "default-pipeline",
]


@pytest.fixture
def seeded(keys):
    call_command("seed_demo", stdout=io.StringIO())
    return {p.slug: p for p in Persona.objects.all()}


def plan(seeded, slug, vad):
    return build_session_plan(PersonaSettings.from_persona(seeded[slug]), vad=vad)


def test_five_recipes_plus_ben_and_paula_are_seeded_and_valid(seeded):
    assert set(RECIPES) | {"ben", "paula"} <= set(seeded)
    assert [spec["slug"] for spec in DEMO_PERSONAS][-5:] == RECIPES
    for persona in seeded.values():
        persona.full_clean()


def test_avatar_assistant(seeded, vad):
    result = plan(seeded, "nora-avatar", vad)
    kwargs = result.session_kwargs
    assert isinstance(kwargs["stt"], deepgram.STT)
    assert kwargs["llm"].model == "gpt-4o"
    assert isinstance(kwargs["tts"], cartesia.TTS)
    assert result.avatar.provider == "bey"
    assert result.avatar.avatar_id == "b9be11b8-89fb-4227-8f86-4a881393cbdb"
    assert seeded["nora-avatar"].preview_mode == "live"


def test_roleplay_customer_on_openai_realtime_with_bvc_and_tuned_vad(seeded, vad):
    result = plan(seeded, "roleplay-customer", vad)
    model = result.session_kwargs["llm"]
    assert type(model) is RealtimeModel and not model._opts.is_azure
    vad_options = model._opts.turn_detection
    assert (vad_options.threshold, vad_options.silence_duration_ms) == (0.7, 600)
    assert isinstance(result.noise_cancellation, NoiseCancellationSelector)
    assert result.noise_cancellation.mode == "bvc"


def test_patient_consultant_on_azure_realtime(seeded, vad):
    result = plan(seeded, "patient-consultant", vad)
    model = result.session_kwargs["llm"]
    assert type(model) is RealtimeModel and model._opts.is_azure
    assert model._opts.turn_detection.silence_duration_ms == 1800
    interruption = result.session_kwargs["turn_handling"]["interruption"]
    assert interruption["min_duration"] == 1.5
    assert seeded["patient-consultant"].is_active is False  # until the editor sets the endpoint


def test_local_llm_assistant_on_ollama_with_a_fallback(seeded, vad):
    kwargs = plan(seeded, "local-llm", vad).session_kwargs
    llm = kwargs["llm"]
    assert isinstance(llm, lk_llm.FallbackAdapter)
    local, fallback = llm._llm_instances
    assert isinstance(local, openai.LLM)
    assert str(local._client.base_url) == "http://127.0.0.1:11434/v1/"
    assert fallback.model == "gpt-4o-mini"
    assert isinstance(kwargs["turn_handling"]["turn_detection"], inference.TurnDetector)


def test_default_pipeline(seeded, vad):
    kwargs = plan(seeded, "default-pipeline", vad).session_kwargs
    assert (kwargs["stt"].model, kwargs["llm"].model, kwargs["tts"].model) == (
        "nova-3",
        "gpt-4o-mini",
        "sonic-2",
    )
    assert isinstance(kwargs["turn_handling"]["turn_detection"], inference.TurnDetector)
