from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.factories import make_conversation, make_persona, persona_fields
from voice_widget.models import Persona, turn_detector_knows
from voice_widget.tools import Tool, registry

pytestmark = pytest.mark.django_db

REALTIME = {
    "pipeline_kind": "realtime",
    "realtime_provider": "openai",
    "realtime_model": "gpt-realtime",
    "turn_detection": "realtime_llm",
}


def errors_for(**overrides):
    persona = Persona(**persona_fields(**overrides))
    with pytest.raises(ValidationError) as excinfo:
        persona.full_clean()
    return excinfo.value.message_dict


def test_default_persona_is_valid():
    make_persona()


def test_realtime_persona_is_valid():
    make_persona(**REALTIME)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        (
            {
                "start_mode": "immediate",
                "preview_mode": "live",
                "avatar_provider": "bey",
                "avatar_id": "av1",
            },
            "start_mode",
            "cannot start immediately",
        ),
        ({"stt_provider": ""}, "stt_provider", "speech-to-text provider"),
        ({"stt_model": " "}, "stt_model", "speech-to-text model"),
        ({"llm_provider": ""}, "llm_provider", "language model provider"),
        ({"llm_model": ""}, "llm_model", "language model"),
        ({"tts_provider": ""}, "tts_provider", "text-to-speech provider"),
        ({"tts_model": ""}, "tts_model", "text-to-speech model"),
        ({"llm_provider": "openai_compatible"}, "llm_base_url", "base URL"),
        ({"llm_provider": "azure_openai"}, "azure_endpoint", "endpoint"),
        ({"llm_base_url": "http://127.0.0.1:11434/v1"}, "llm_base_url", "only used with"),
        ({"tts_instructions": "Speak warmly."}, "tts_instructions", "OpenAI"),
        (
            {"stt_provider": "openai", "stt_model": "whisper-1", "stt_keyterms": "Linden"},
            "stt_keyterms",
            "Deepgram only",
        ),
        ({"turn_detection": "realtime_llm"}, "turn_detection", "realtime pipeline"),
        (
            {"stt_provider": "openai", "stt_model": "whisper-1", "turn_detection": "stt"},
            "turn_detection",
            "does not detect the end",
        ),
        ({"llm_fallback_provider": "openai"}, "llm_fallback_model", "Name the fallback"),
        ({"tts_fallback_model": "sonic-2"}, "tts_fallback_provider", "fallback provider"),
        (
            {"stt_fallback_provider": "deepgram", "stt_fallback_model": "nova-3"},
            "stt_fallback_model",
            "same as the primary",
        ),
        (
            {"llm_fallback_provider": "openai_compatible", "llm_fallback_model": "llama3.1"},
            "llm_fallback_provider",
            "base URL",
        ),
        (
            {"min_endpointing_delay": 4.0, "max_endpointing_delay": 2.0},
            "max_endpointing_delay",
            "at least the minimum",
        ),
        ({"language": "pl", "turn_detection": "audio"}, "turn_detection", "does not know pl"),
        ({"language": "sv-SE"}, "turn_detection", "use voice activity only"),
        ({"language": "pl", "turn_detection": "multilingual"}, "turn_detection", "valid choice"),
        ({"avatar_provider": "bey"}, "avatar_id", "avatar id"),
        ({"avatar_id": "av1"}, "avatar_provider", "avatar provider"),
        ({"preview_mode": "live"}, "preview_mode", "live preview shows the avatar"),
        ({"preview_mode": "poster"}, "preview_mode", "needs a poster image or an idle clip"),
        ({"enabled_tools": ["no_such_tool"]}, "enabled_tools", "no_such_tool"),
        ({"page_tools": {"name": "x"}}, "page_tools", "must be a list"),
        ({"page_tools": [{"name": "show product", "description": "d"}]}, "page_tools", "letters"),
        ({"page_tools": [{"name": "show_product"}]}, "page_tools", "describe when"),
        (
            {"page_tools": [{"name": "end_conversation", "description": "d"}]},
            "page_tools",
            "registered in code",
        ),
        (
            {"page_tools": [{"name": "a", "description": "d"}, {"name": "a", "description": "e"}]},
            "page_tools",
            "declared twice",
        ),
        (
            {"page_tools": [{"name": "a", "description": "d", "parameters": {"type": "string"}}]},
            "page_tools",
            "JSON schema object",
        ),
        ({"page_tools": [{"name": "a", "description": "d", "args": {}}]}, "page_tools", "args"),
        ({"language": "english"}, "language", "BCP-47"),
        ({"accent_color": "blue"}, "accent_color", "hex"),
        (
            {"allowed_origins": "https://ok.example\nhttps://bad.example/path"},
            "allowed_origins",
            "https://bad.example/path",
        ),
        ({"stt_provider": "livekit", "stt_model": "nova-3"}, "stt_model", "provider/model"),
        ({"llm_provider": "livekit", "llm_model": "gpt-4.1-mini"}, "llm_model", "provider/model"),
        ({"tts_provider": "livekit", "tts_model": "sonic-2"}, "tts_model", "provider/model"),
        (
            {"stt_fallback_provider": "livekit", "stt_fallback_model": "nova-3"},
            "stt_fallback_model",
            "provider/model",
        ),
        ({"llm_temperature": 3.0}, "llm_temperature", "less than or equal"),
        ({"vad_threshold": 1.0}, "vad_threshold", "less than or equal"),
        (
            {"interaction_mode": "text", "avatar_provider": "bey", "avatar_id": "av1"},
            "interaction_mode",
            "avatar speaks",
        ),
        ({"consent_url": "https://shop.example/privacy/"}, "consent_text", "Write the notice"),
        ({"consent_text": "x" * 1001}, "consent_text", "at most 1000"),
        ({"interaction_mode": "chat"}, "interaction_mode", "valid choice"),
    ],
)
def test_clean_rejects_combinations_that_cannot_work(overrides, field, fragment):
    errors = errors_for(**overrides)
    assert field in errors, errors
    assert any(fragment.lower() in message.lower() for message in errors[field]), errors[field]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"realtime_provider": ""}, "realtime_provider", "realtime provider"),
        ({"realtime_model": ""}, "realtime_model", "realtime model"),
        ({"realtime_provider": "azure_openai"}, "azure_endpoint", "endpoint"),
        ({"realtime_use_tts": True, "tts_provider": ""}, "tts_provider", "text-to-speech"),
        ({"realtime_use_tts": True, "tts_model": ""}, "tts_model", "text-to-speech model"),
        ({"turn_detection": "stt"}, "turn_detection", "realtime model decide"),
        (
            {"realtime_turn_detection": "semantic_vad", "realtime_vad_threshold": 0.6},
            "realtime_vad_threshold",
            "server VAD only",
        ),
        (
            {"realtime_turn_detection": "semantic_vad", "realtime_silence_duration_ms": 900},
            "realtime_silence_duration_ms",
            "server VAD only",
        ),
        (
            {"realtime_turn_detection": "semantic_vad", "realtime_prefix_padding_ms": 300},
            "realtime_prefix_padding_ms",
            "server VAD only",
        ),
        (
            {"turn_detection": "vad", "realtime_silence_duration_ms": 900},
            "realtime_silence_duration_ms",
            "only when the realtime model decides",
        ),
        ({"turn_detection": "audio"}, "turn_detection", "realtime model decide"),
        ({"llm_temperature": 0.7}, "llm_temperature", "take no temperature"),
        ({"allow_interruptions": False}, "allow_interruptions", "can always interrupt"),
        (
            {"stt_fallback_provider": "deepgram", "stt_fallback_model": "nova-3"},
            "stt_fallback_provider",
            "realtime model replaces",
        ),
        (
            {"llm_fallback_provider": "openai", "llm_fallback_model": "gpt-4o"},
            "llm_fallback_provider",
            "realtime model replaces",
        ),
        (
            {"tts_fallback_provider": "openai", "tts_fallback_model": "tts-1"},
            "tts_fallback_provider",
            "speak with the text-to-speech voice",
        ),
        (
            {"realtime_use_tts": True, "tts_provider": "livekit", "tts_model": "sonic-2"},
            "tts_model",
            "provider/model",
        ),
    ],
)
def test_clean_rejects_realtime_combinations_that_cannot_work(overrides, field, fragment):
    errors = errors_for(**{**REALTIME, **overrides})
    assert field in errors, errors
    assert any(fragment.lower() in message.lower() for message in errors[field]), errors[field]


def test_realtime_with_livekit_vad_may_forbid_interruptions():
    make_persona(**{**REALTIME, "turn_detection": "vad"}, allow_interruptions=False)


def test_realtime_persona_does_not_need_pipeline_stages():
    make_persona(**REALTIME, stt_provider="", llm_model="", tts_voice="")


def test_audio_turn_detector_accepts_its_languages():
    make_persona(language="de-AT", turn_detection="audio")


def test_the_default_turn_detection_is_the_turn_detector_model():
    assert make_persona().turn_detection == "audio"


def test_languages_the_turn_detector_model_does_not_know_use_voice_activity():
    make_persona(language="sv-SE", turn_detection="vad")


def test_empty_greeting_to_say_is_a_hello_with_the_name():
    assert make_persona(name="Paula", greeting=" ").greeting == (
        "Hello, I'm Paula. How can I help you?"
    )


def test_instructions_default_to_a_working_prompt():
    persona = Persona(name="Nora", slug="nora", tts_voice="v")
    persona.full_clean()
    assert "spoken aloud" in persona.instructions


@pytest.mark.parametrize(
    ("provider", "model", "language", "voice"),
    [
        ("cartesia", "sonic-2", "en", "9626c31c-bec5-4cca-baa8-f8ba9e84c8bc"),  # Jacqueline
        ("cartesia", "sonic-2", "de-DE", "3f4ade23-6eb4-4279-ab05-6a144947c4d5"),
        ("cartesia", "sonic-2", "pl", "9626c31c-bec5-4cca-baa8-f8ba9e84c8bc"),
        ("openai", "gpt-4o-mini-tts", "de", "coral"),
        ("livekit", "cartesia/sonic-2", "fr", "a249eaff-1e96-4d2c-b23b-12efa4f66f41"),
        ("livekit", "deepgram/aura-2", "en", ""),  # LiveKit picks the model's own default
    ],
)
def test_empty_voice_is_the_providers_default_for_the_language(provider, model, language, voice):
    persona = make_persona(
        tts_provider=provider,
        tts_model=model,
        language=language,
        tts_voice="",
        turn_detection="audio" if turn_detector_knows(language) else "vad",
    )
    assert persona.tts_voice == voice


def test_realtime_speaking_with_tts_gets_the_default_voice():
    persona = make_persona(**REALTIME, realtime_use_tts=True, tts_voice="")
    assert persona.tts_voice == "9626c31c-bec5-4cca-baa8-f8ba9e84c8bc"


def test_realtime_without_tts_keeps_the_voice_empty():
    assert make_persona(**REALTIME, tts_voice="").tts_voice == ""


def test_fallback_voice_defaults_to_the_fallback_providers_voice():
    persona = make_persona(
        tts_fallback_provider="openai", tts_fallback_model="tts-1", tts_fallback_voice=""
    )
    assert persona.tts_fallback_voice == "coral"


def test_generated_greeting_may_be_empty():
    make_persona(greeting="", greeting_mode="generate")


def test_poster_preview_accepts_an_image_url():
    make_persona(preview_mode="poster", preview_image_url="https://cdn.example/paula.jpg")


def test_poster_preview_accepts_an_uploaded_clip():
    clip = SimpleUploadedFile("idle.mp4", b"\x00\x00\x00\x18ftypmp42", content_type="video/mp4")
    persona = make_persona(preview_mode="poster", preview_video=clip)
    assert persona.idle_clip_url.endswith(".mp4")


def test_upload_and_url_of_the_same_media_is_rejected():
    image = SimpleUploadedFile("p.png", b"\x89PNG\r\n", content_type="image/png")
    errors = errors_for(preview_image=image, preview_image_url="https://cdn.example/p.png")
    assert "preview_image_url" in errors


def test_preview_files_are_checked_by_extension():
    errors = errors_for(preview_video=SimpleUploadedFile("clip.exe", b"MZ"))
    assert "preview_video" in errors


def test_live_preview_with_avatar_is_valid():
    make_persona(avatar_provider="bey", avatar_id="b9be11b8", preview_mode="live")


def test_registered_tool_is_accepted():
    registry.register(Tool(name="opening_hours_test", description="Hours", function=len))
    try:
        make_persona(enabled_tools=["end_conversation", "opening_hours_test"])
    finally:
        registry.unregister("opening_hours_test")


def test_page_tools_declared_with_or_without_parameters_are_accepted():
    make_persona(
        page_tools=[
            {
                "name": "show_product",
                "description": "Show a product.",
                "parameters": {"type": "object", "properties": {"product": {"type": "string"}}},
            },
            {"name": "open_cart", "description": "Open the cart."},
        ]
    )


def test_no_field_can_hold_an_api_key():
    names = {field.name for field in Persona._meta.get_fields()}
    assert not [name for name in names if "key" in name and name != "stt_keyterms"]
    assert not [name for name in names if "secret" in name or "token" in name]


def test_allowed_origins_are_normalised():
    persona = make_persona(allowed_origins="https://Shop.Example.com/\n http://a.example:8080")
    assert persona.allowed_origin_list == ["https://shop.example.com", "http://a.example:8080"]


def test_embed_snippet_is_the_template_tag():
    persona = make_persona(slug="paula")
    assert persona.embed_snippet == '{% load voice_widget %}{% voice_widget "paula" %}'


def test_snapshot_is_json_ready_and_complete():
    import json

    persona = make_persona(slug="snap")
    data = json.loads(json.dumps(persona.snapshot()))
    assert data["slug"] == "snap"
    assert data["instructions"] == persona.instructions
    assert data["preview_image"] == ""
    assert "created_at" in data


def test_conversation_duration_counts_from_start():
    conversation = make_conversation()
    assert conversation.duration is None
    now = timezone.now()
    conversation.started_at = now - timedelta(seconds=95)
    conversation.ended_at = now
    assert conversation.duration == timedelta(seconds=95)


def test_persona_with_conversations_cannot_be_deleted():
    from django.db.models import ProtectedError

    conversation = make_conversation()
    with pytest.raises(ProtectedError):
        conversation.persona.delete()
