"""A provider is one catalogue entry plus one builder: the worker holds nothing else about it."""

import ast
from pathlib import Path

import pytest

pytest.importorskip("livekit.agents")

from django.core.checks import run_checks  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from livekit.plugins import openai  # noqa: E402

from agent_runner import avatar, pipeline  # noqa: E402
from agent_runner.credentials import missing_credentials  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from tests.factories import persona_fields  # noqa: E402
from voice_widget import providers  # noqa: E402
from voice_widget.models import Persona  # noqa: E402
from voice_widget.persona_settings import PersonaSettings  # noqa: E402

pytestmark = pytest.mark.agent

keys, vad = shared.keys, shared.vad

BUILDER_TABLES = {
    providers.STT: pipeline.STT_BUILDERS,
    providers.LLM: pipeline.LLM_BUILDERS,
    providers.TTS: pipeline.TTS_BUILDERS,
    providers.REALTIME: pipeline.REALTIME_BUILDERS,
    providers.AVATAR: avatar.AVATAR_BUILDERS,
}


@pytest.mark.parametrize("stage", providers.STAGES)
def test_every_catalogue_provider_has_a_builder_and_every_builder_an_entry(stage):
    assert set(BUILDER_TABLES[stage]) == {p.id for p in providers.serving(stage)}


def test_no_worker_module_spells_a_provider_id():
    ids = set(providers.PROVIDERS) | {providers.NO_AVATAR}
    root = Path(pipeline.__file__).parent
    found = [
        f"{path.relative_to(root.parent)}:{node.lineno} {node.value!r}"
        for path in sorted(root.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in ids
    ]
    assert found == [], "use the constants of voice_widget.providers"


#: A provider that is not in the project: Acme speaks OpenAI's text-to-speech API.
ACME = providers.Provider(
    "acme",
    "Acme Voices",
    stages=(providers.TTS,),
    env_vars=("ACME_API_KEY",),
    needs_voice=True,
)


def _acme_tts(p, model, voice):
    return openai.TTS(
        model=model, voice=voice, base_url="https://tts.acme.example/v1", api_key="acme-key"
    )


@pytest.fixture
def acme(monkeypatch, keys):
    monkeypatch.setitem(providers.PROVIDERS, ACME.id, ACME)
    monkeypatch.setitem(pipeline.TTS_BUILDERS, ACME.id, _acme_tts)
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    return monkeypatch


def acme_persona(**overrides):
    # Persona.clean() runs the catalogue's rules; the field's choices were fixed at import,
    # which a catalogue entry added in code (and its migration) extends.
    persona = Persona(**persona_fields(tts_provider="acme", tts_model="acme-1", **overrides))
    persona.clean()
    return persona


def test_a_provider_added_as_one_entry_and_one_builder_is_used_everywhere(acme, vad, db):
    with pytest.raises(ValidationError, match="Choose the voice the agent speaks with"):
        acme_persona(tts_voice="")  # the catalogue says Acme needs a voice
    persona = acme_persona(tts_voice="aria")

    # The credential check names its key, through Django's checks.
    assert missing_credentials(PersonaSettings.from_persona(persona)) == ["ACME_API_KEY"]
    persona.save()
    [warning] = [
        message
        for message in run_checks(tags=["agent_runner"], include_deployment_checks=True)
        if message.obj == persona
    ]
    assert warning.id == "agent_runner.W001" and "ACME_API_KEY is not set" in warning.msg
    with pytest.raises(pipeline.MissingCredentials):
        pipeline.build_session_plan(PersonaSettings.from_persona(persona), vad=vad)

    # With the key, the worker builds Acme's voice with its builder.
    acme.setenv("ACME_API_KEY", "acme-key")
    assert run_checks(tags=["agent_runner"], include_deployment_checks=True) == []
    plan = pipeline.build_session_plan(PersonaSettings.from_persona(persona), vad=vad)
    tts = plan.session_kwargs["tts"]
    assert type(tts) is openai.TTS
    assert tts.model == "acme-1" and tts._opts.voice == "aria"
    assert str(tts._client.base_url).startswith("https://tts.acme.example/v1")
