"""Which keys a persona's providers need, and which ones the worker lacks."""

import pytest

from agent_runner.credentials import (
    credential,
    livekit_inference_credentials,
    missing_credentials,
    provider_api_url,
    provider_key,
    required_credentials,
)
from tests.factories import persona_fields
from voice_widget import providers
from voice_widget.models import AvatarProvider, LLMProvider, Persona, STTProvider, TTSProvider
from voice_widget.persona_settings import PersonaSettings

ALL_KEYS = [
    "DEEPGRAM_API_KEY",
    "OPENAI_API_KEY",
    "CARTESIA_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "BEY_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
]


@pytest.fixture
def no_keys(monkeypatch, settings):
    for name in ALL_KEYS:
        monkeypatch.delenv(name, raising=False)
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_URL"):
        monkeypatch.delenv(name, raising=False)
    settings.VOICE_WIDGET = {"LIVEKIT_URL": "wss://x.livekit.cloud"}
    settings.DEBUG = False
    return monkeypatch


def settings_for(**overrides):
    persona = Persona(**persona_fields(**overrides))
    persona.full_clean(validate_unique=False, validate_constraints=False)
    return PersonaSettings.from_persona(persona)


REALTIME = {
    "pipeline_kind": "realtime",
    "realtime_provider": "openai",
    "realtime_model": "gpt-realtime",
    "turn_detection": "realtime_llm",
}


def test_every_provider_choice_has_its_variables():
    choices = {*STTProvider.values, *LLMProvider.values, *TTSProvider.values}
    choices |= set(AvatarProvider.values) - {"none"}
    for choice in choices:
        entry = providers.get(choice)
        assert entry is not None, choice
        assert entry.env_vars or entry.optional_env_vars, choice


def test_provider_key_reads_the_variable_the_catalogue_names(no_keys, settings):
    assert provider_key("deepgram") is None
    no_keys.setenv("DEEPGRAM_API_KEY", " dg-key ")
    assert provider_key("deepgram") == "dg-key"
    settings.AZURE_OPENAI_API_KEY = "az-from-settings"
    assert provider_key("azure_openai") == "az-from-settings"


def test_an_optional_key_is_used_when_set(no_keys):
    assert provider_key("openai_compatible") is None
    no_keys.setenv("OPENAI_COMPATIBLE_API_KEY", "groq-key")
    assert provider_key("openai_compatible") == "groq-key"


def test_livekit_inference_key_is_the_cloud_projects_not_the_dev_pair(no_keys, settings):
    settings.DEBUG = True
    settings.VOICE_WIDGET = {}
    assert provider_key("livekit") is None
    assert livekit_inference_credentials() == (None, None)
    settings.VOICE_WIDGET = {"LIVEKIT_API_KEY": "APIcloud", "LIVEKIT_API_SECRET": "s" * 40}
    assert provider_key("livekit") == "APIcloud"
    assert livekit_inference_credentials() == ("APIcloud", "s" * 40)


def test_an_avatar_api_url_comes_from_the_catalogues_variable(no_keys):
    no_keys.delenv("BEY_API_URL", raising=False)
    assert provider_api_url("bey") is None
    no_keys.setenv("BEY_API_URL", "https://bey.internal.example")
    assert provider_api_url("bey") == "https://bey.internal.example"
    assert provider_api_url("openai") is None


def test_default_pipeline_needs_deepgram_openai_cartesia(no_keys):
    assert missing_credentials(settings_for()) == [
        "DEEPGRAM_API_KEY",
        "OPENAI_API_KEY",
        "CARTESIA_API_KEY",
    ]


def test_set_keys_are_not_missing(no_keys):
    no_keys.setenv("DEEPGRAM_API_KEY", "dg")
    no_keys.setenv("CARTESIA_API_KEY", " ")  # blank counts as missing
    assert missing_credentials(settings_for()) == ["OPENAI_API_KEY", "CARTESIA_API_KEY"]


def test_a_django_setting_of_the_same_name_counts(no_keys, settings):
    settings.OPENAI_API_KEY = "sk-from-settings"
    assert credential("OPENAI_API_KEY") == "sk-from-settings"
    assert "OPENAI_API_KEY" not in missing_credentials(settings_for())


def test_ollama_needs_no_key(no_keys):
    persona = settings_for(
        stt_provider="openai",
        stt_model="whisper-1",
        turn_detection="vad",
        llm_provider="openai_compatible",
        llm_model="llama3.1",
        llm_base_url="http://127.0.0.1:11434/v1",
        tts_provider="openai",
        tts_model="tts-1",
        tts_voice="alloy",
    )
    assert missing_credentials(persona) == ["OPENAI_API_KEY"]


def test_azure_realtime_needs_only_the_azure_key(no_keys):
    persona = settings_for(
        **{**REALTIME, "realtime_provider": "azure_openai"},
        azure_endpoint="https://r.openai.azure.com",
    )
    assert missing_credentials(persona) == ["AZURE_OPENAI_API_KEY"]


def test_realtime_with_tts_voice_needs_the_tts_key_too(no_keys):
    persona = settings_for(**REALTIME, realtime_use_tts=True)
    assert missing_credentials(persona) == ["OPENAI_API_KEY", "CARTESIA_API_KEY"]


def test_realtime_ignores_the_unused_pipeline_stages(no_keys):
    assert missing_credentials(settings_for(**REALTIME)) == ["OPENAI_API_KEY"]


def test_fallbacks_need_their_keys(no_keys):
    persona = settings_for(
        llm_fallback_provider="azure_openai",
        llm_fallback_model="gpt-4o-mini",
        azure_endpoint="https://r.openai.azure.com",
    )
    assert "AZURE_OPENAI_API_KEY" in missing_credentials(persona)


def test_avatar_key_is_listed_unless_left_out(no_keys):
    persona = settings_for(avatar_provider="bey", avatar_id="b9be11b8")
    assert missing_credentials(persona)[-1] == "BEY_API_KEY"
    assert "BEY_API_KEY" not in missing_credentials(persona, include_avatar=False)


def test_livekit_inference_needs_livekit_cloud_credentials(no_keys, settings):
    persona = settings_for(
        stt_provider="livekit",
        stt_model="deepgram/nova-3",
        llm_provider="livekit",
        llm_model="openai/gpt-4.1-mini",
        tts_provider="livekit",
        tts_model="cartesia/sonic-2",
    )
    assert missing_credentials(persona) == ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]
    settings.VOICE_WIDGET = {"LIVEKIT_API_KEY": "APIcloud", "LIVEKIT_API_SECRET": "s" * 40}
    assert missing_credentials(persona) == []


def test_livekit_dev_server_credentials_do_not_count_for_inference(no_keys, settings):
    settings.DEBUG = True  # devkey / secret defaults of livekit-server --dev
    settings.VOICE_WIDGET = {}
    persona = settings_for(stt_provider="livekit", stt_model="deepgram/nova-3")
    assert missing_credentials(persona)[:2] == ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]


def test_required_lists_each_variable_once(no_keys):
    persona = settings_for(
        stt_provider="openai",
        stt_model="whisper-1",
        turn_detection="vad",
        tts_provider="openai",
        tts_model="tts-1",
        tts_voice="alloy",
    )
    assert required_credentials(persona) == ["OPENAI_API_KEY"]
