"""LiveKit's turn-detector model (``livekit.agents.inference.TurnDetector``): chosen for the
languages it knows, voice activity otherwise, and run offline from the bundled weights."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("livekit.agents")

import numpy as np  # noqa: E402
from livekit.agents import AgentSession, inference  # noqa: E402

from agent_runner.pipeline import build_session_plan  # noqa: E402
from tests.test_pipeline import PLACEHOLDER_KEYS, settings_for, snapshot  # noqa: E402
from voice_widget.persona_settings import PersonaSettings  # noqa: E402

pytestmark = pytest.mark.agent


@pytest.fixture
def keys(monkeypatch):
    for name, value in PLACEHOLDER_KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def vad():
    from livekit.plugins import silero

    return silero.VAD.load()


def turn_detection(vad, *, turn_detection, **overrides):
    # As stored, even where Persona.clean() would refuse the pair today (an old snapshot).
    persona = {**snapshot(turn_detection="vad", **overrides), "turn_detection": turn_detection}
    plan = build_session_plan(PersonaSettings.from_snapshot(persona), vad=vad)
    return plan.session_kwargs["turn_handling"]["turn_detection"]


@pytest.mark.parametrize("language", ["en", "en-US", "de-AT", "ja", "pt-BR"])
def test_languages_the_model_knows_get_the_local_turn_detector(keys, vad, language):
    detector = turn_detection(vad, language=language, turn_detection="audio")
    assert isinstance(detector, inference.TurnDetector)
    assert detector.model == "turn-detector-v1-mini"
    assert detector.provider == "livekit"


@pytest.mark.parametrize("language", ["sv-SE", "pl", "fi"])
def test_other_languages_get_voice_activity(keys, vad, language):
    assert turn_detection(vad, language=language, turn_detection="audio") == "vad"


@pytest.mark.parametrize("old_choice", ["multilingual", "english"])
def test_snapshots_naming_the_retired_text_models_get_the_turn_detector(keys, vad, old_choice):
    # Conversations started before migration 0003 carry the old choice in their snapshot.
    assert isinstance(turn_detection(vad, turn_detection=old_choice), inference.TurnDetector)
    assert turn_detection(vad, language="sv", turn_detection=old_choice) == "vad"


async def test_agent_session_accepts_the_turn_detector_with_the_vad(keys, vad):
    plan = build_session_plan(settings_for(language="de"), vad=vad)
    session = AgentSession(**plan.session_kwargs)
    assert isinstance(session.options.turn_handling["turn_detection"], inference.TurnDetector)


def test_the_model_predicts_offline_from_the_bundled_weights():
    from livekit.local_inference import EOT

    pcm = (np.random.default_rng(1).standard_normal(16000) * 300).astype(np.int16)
    probability = float(EOT().predict(pcm))  # no network, no download-files
    assert 0.0 <= probability <= 1.0


def test_the_deprecated_turn_detector_plugin_is_not_imported():
    code = (
        "import django, sys; django.setup(); import agent_runner.pipeline, agent_runner.worker; "
        "agent_runner.worker.build_server(agent_name='x', port=0); "
        "assert 'livekit.plugins.turn_detector' not in sys.modules, 'imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_admin_knows_the_models_languages():
    from livekit.agents.inference.eot.languages import LOCAL_LANGUAGES

    from voice_widget.models import AUDIO_TURN_DETECTOR_LANGUAGES

    assert set(LOCAL_LANGUAGES) == AUDIO_TURN_DETECTOR_LANGUAGES
