"""A provider is one catalogue entry plus one builder: the worker holds nothing else about it."""

import ast
from pathlib import Path

import pytest

pytest.importorskip("livekit.agents")

from django.core.checks import run_checks  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from livekit.plugins import openai  # noqa: E402

from agent_runner import avatar, pipeline  # noqa: E402
from agent_runner.credentials import missing_credentials, provider_key  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from tests.factories import persona_fields  # noqa: E402
from voice_widget import providers  # noqa: E402
from voice_widget.conf import LIVEKIT_KEYS  # noqa: E402
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


def _worker_modules():
    root = Path(pipeline.__file__).parent
    for path in sorted(root.rglob("*.py")):
        yield path.relative_to(root.parent), ast.parse(path.read_text())


def test_no_worker_module_spells_a_providers_variable():
    # LiveKit's key and secret are also the project's own settings (voice_widget.conf).
    names = {
        name
        for provider in providers.PROVIDERS.values()
        for name in (*provider.env_vars, *provider.optional_env_vars, provider.api_url_env_var)
        if name and name not in LIVEKIT_KEYS
    }
    found = [
        f"{path}:{node.lineno} {node.value!r}"
        for path, tree in _worker_modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        # A variable's name anywhere in a string (a message, a literal key name).
        and any(name in node.value for name in names)
        and not _is_docstring(tree, node)
    ]
    assert found == [], "ask agent_runner.credentials (provider_key) for the catalogue's names"


def _is_docstring(tree, constant):
    return any(
        getattr(node, "body", None)
        and isinstance(node.body[0], ast.Expr)
        and node.body[0].value is constant
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    )


def _choice_literals(node):
    """The string constants ``node`` compares a value with, or falls back to (``x or "off"``)."""
    if isinstance(node, ast.Compare):
        operands = node.comparators
    elif isinstance(node, ast.BoolOp):
        operands = node.values[-1:]
    else:
        return []
    found = []
    for operand in operands:
        is_collection = isinstance(operand, ast.Tuple | ast.List | ast.Set)
        elements = operand.elts if is_collection else [operand]
        found += [e for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return found


def test_no_worker_module_compares_a_persona_choice_with_a_string_literal():
    values = {
        value
        for field in Persona._meta.fields
        if field.choices
        for value, _label in field.flatchoices
    }
    found = [
        f"{path}:{node.lineno} {constant.value!r}"
        for path, tree in _worker_modules()
        for node in ast.walk(tree)
        for constant in _choice_literals(node)
        if constant.value in values
    ]
    assert found == [], "use the persona's TextChoices (voice_widget.models)"


#: A provider that is not in the project: Acme speaks OpenAI's text-to-speech API.
ACME = providers.Provider(
    "acme",
    "Acme Voices",
    stages=(providers.TTS,),
    env_vars=("ACME_API_KEY",),
    needs_voice=True,
)


def _acme_tts(p, model, voice):
    # The builder asks for the provider's key; the catalogue alone knows its variable.
    return openai.TTS(
        model=model,
        voice=voice,
        base_url="https://tts.acme.example/v1",
        api_key=provider_key(ACME.id),
    )


@pytest.fixture
def acme(monkeypatch, keys):
    monkeypatch.setitem(providers.PROVIDERS, ACME.id, ACME)
    monkeypatch.setitem(pipeline.TTS_BUILDERS, ACME.id, _acme_tts)
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    return monkeypatch


def worker_checks():
    """The worker's checks as it runs them at its start (they read the personas)."""
    return run_checks(tags=["agent_runner"], include_deployment_checks=True, databases=["default"])


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
    [warning] = [message for message in worker_checks() if message.obj == persona]
    assert warning.id == "agent_runner.W001" and "ACME_API_KEY is not set" in warning.msg
    with pytest.raises(pipeline.MissingCredentials):
        pipeline.build_session_plan(PersonaSettings.from_persona(persona), vad=vad)

    # With the key, the worker builds Acme's voice with its builder.
    acme.setenv("ACME_API_KEY", "acme-key")
    assert worker_checks() == []
    plan = pipeline.build_session_plan(PersonaSettings.from_persona(persona), vad=vad)
    tts = plan.session_kwargs["tts"]
    assert type(tts) is openai.TTS
    assert tts.model == "acme-1" and tts._opts.voice == "aria"
    assert str(tts._client.base_url).startswith("https://tts.acme.example/v1")
    assert tts._client.api_key == "acme-key"
