"""The provider catalogue: the persona's choices, its rules and the admin read one entry."""

import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import make_persona, persona_fields
from voice_widget import providers
from voice_widget.models import (
    AvatarProvider,
    LLMProvider,
    Persona,
    RealtimeProvider,
    STTProvider,
    TTSProvider,
)


@pytest.mark.parametrize(
    ("choices", "stage"),
    [
        (STTProvider, providers.STT),
        (LLMProvider, providers.LLM),
        (TTSProvider, providers.TTS),
        (RealtimeProvider, providers.REALTIME),
    ],
)
def test_provider_choices_are_the_catalogues_providers_of_the_stage(choices, stage):
    assert choices.choices == [
        (provider.id, str(provider.name_in(stage))) for provider in providers.serving(stage)
    ]


def test_avatar_choices_are_voice_only_then_the_catalogues_avatars():
    assert AvatarProvider.values == [providers.NO_AVATAR, providers.BEY]
    assert AvatarProvider.BEY.label == "Beyond Presence"


def test_a_new_catalogue_entry_becomes_a_choice_of_its_stages(monkeypatch):
    acme = providers.Provider("acme", "Acme Voices", stages=(providers.TTS,))
    monkeypatch.setitem(providers.PROVIDERS, acme.id, acme)
    choices = providers.choices(providers.TTS, "TTSProvider")
    assert ("acme", "Acme Voices") in choices.choices
    assert choices.ACME == "acme"
    assert "acme" not in providers.choices(providers.STT, "STTProvider").values


def errors_of_clean(**overrides):
    """The errors of ``Persona.clean()`` (the catalogue's rules, not the field choices)."""
    persona = Persona(**persona_fields(**overrides))
    with pytest.raises(ValidationError) as caught:
        persona.clean()
    return caught.value.message_dict


def test_clean_reads_a_new_providers_capabilities_from_the_catalogue(monkeypatch):
    acme = providers.Provider(
        "acme",
        "Acme Voices",
        stages=(providers.STT, providers.TTS),
        env_vars=("ACME_API_KEY",),
        keyterms=True,
        voice_instructions=True,
        needs_voice=True,
        routes_models=True,
    )
    monkeypatch.setitem(providers.PROVIDERS, acme.id, acme)

    errors = errors_of_clean(
        stt_provider="openai", stt_model="whisper-1", stt_keyterms="Linden", tts_voice="coral"
    )
    assert errors["stt_keyterms"] == ["Key terms work with Deepgram or Acme Voices only."]

    errors = errors_of_clean(
        stt_provider="acme",
        stt_model="nova",
        stt_keyterms="Linden",
        tts_provider="acme",
        tts_model="bright",
        tts_voice="",
        tts_instructions="Warmly.",
    )
    assert "stt_keyterms" not in errors and "tts_instructions" not in errors
    assert "provider/model" in errors["stt_model"][0]  # a gateway's models are provider/model
    assert errors["tts_voice"] == ["Choose the voice the agent speaks with."]


def test_clean_asks_for_the_fields_a_provider_requires(monkeypatch):
    monkeypatch.setitem(
        providers.PROVIDERS,
        "acme",
        providers.Provider(
            "acme", "Acme Cloud", stages=(providers.LLM,), required_fields=("azure_endpoint",)
        ),
    )
    errors = errors_of_clean(llm_provider="acme", llm_model="a-1")
    assert errors["azure_endpoint"] == ["Acme Cloud needs the endpoint of your resource."]


def test_every_required_field_has_a_message_and_every_provider_a_stage():
    from voice_widget.models import REQUIRED_FIELD_MESSAGES

    for provider in providers.PROVIDERS.values():
        assert provider.stages and set(provider.stages) <= set(providers.STAGES)
        assert set(provider.required_fields) <= set(REQUIRED_FIELD_MESSAGES)
        assert set(provider.models) <= set(provider.stages)
        assert set(provider.voices) <= set(provider.stages)
        for name in provider.required_fields:
            Persona._meta.get_field(name)


def test_voice_pipeline_help_names_the_keys_of_every_voice_provider(admin_client):
    html = admin_client.get(reverse("admin:voice_widget_persona_add")).content.decode()
    voice = {providers.STT, providers.LLM, providers.TTS, providers.REALTIME}
    for provider in providers.PROVIDERS.values():
        if voice & set(provider.stages):
            for name in provider.env_vars + provider.optional_env_vars:
                assert name in html, name


def test_model_fields_suggest_the_chosen_providers_models(admin_client):
    persona = make_persona(stt_provider="deepgram", stt_model="nova-3")
    html = admin_client.get(reverse("admin:voice_widget_persona_change", args=[persona.pk]))
    html = html.content.decode()

    field = re.search(r'<input[^>]*name="stt_model"[^>]*>', html).group(0)
    assert 'list="id_stt_model_models_deepgram"' in field
    assert 'data-provider-field="stt_provider"' in field
    for stage, name in (("stt", "stt_model"), ("llm", "llm_model"), ("tts", "tts_model")):
        for provider, models in providers.model_suggestions(stage).items():
            datalist = re.search(
                rf'<datalist id="id_{name}_models_{provider}".*?</datalist>', html, re.S
            )
            assert datalist, (name, provider)
            assert re.findall(r'<option value="([^"]+)">', datalist.group(0)) == list(models)


def test_persona_form_gets_each_providers_own_fields_from_the_catalogue(admin_client):
    html = admin_client.get(reverse("admin:voice_widget_persona_add")).content.decode()
    data = re.search(
        r'<script id="vw-provider-fields" type="application/json">(.*?)</script>', html, re.S
    )
    fields = json.loads(data.group(1))
    assert fields == providers.provider_fields()
    assert fields["stt"] == {"deepgram": ["stt_keyterms"]}
    assert fields["tts"] == {"openai": ["tts_instructions"]}
    assert fields["llm"]["openai_compatible"] == ["llm_base_url"]
    assert fields["realtime"]["azure_openai"] == ["azure_endpoint", "azure_deployment"]
