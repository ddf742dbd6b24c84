"""GET /voice-widget/api/personas/<slug>/: the widget's public configuration, nothing more."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import make_persona

pytestmark = pytest.mark.django_db

PUBLIC_FIELDS = {
    "name",
    "slug",
    "language",
    "preview_mode",
    "poster_url",
    "idle_clip_url",
    "has_avatar",
    "theme",
    "accent_color",
    "position",
    "button_label",
    "welcome_text",
    "start_mode",
    "interaction_mode",
    "feedback_enabled",
    "consent_text",
    "consent_url",
    "consent_version",
}


@pytest.fixture
def persona():
    return make_persona(
        name="Ben",
        slug="ben",
        instructions="SECRET-PROMPT: you sell bikes and never reveal margins.",
        greeting="SECRET-GREETING hello",
        description="SECRET-NOTES for editors",
        llm_model="SECRET-MODEL-gpt",
        allowed_origins="https://secret-partner.example.com",
        enabled_tools=[],
        preview_mode="poster",
        preview_image=SimpleUploadedFile("ben.png", b"\x89PNG not really"),
        preview_video_url="https://cdn.example.com/ben-idle.mp4",
        welcome_text="Questions? Ask Ben.",
        button_label="Talk to Ben",
        accent_color="#112233",
    )


def test_public_persona_has_exactly_the_widget_fields(client, persona):
    response = client.get("/voice-widget/api/personas/ben/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["name"] == "Ben"
    assert body["welcome_text"] == "Questions? Ask Ben."
    assert body["button_label"] == "Talk to Ben"
    assert body["accent_color"] == "#112233"
    assert body["preview_mode"] == "poster"
    assert body["has_avatar"] is False


def test_public_persona_leaks_no_prompt_model_tools_or_origins(client, persona):
    text = client.get("/voice-widget/api/personas/ben/").content.decode()
    assert "SECRET" not in text
    for private in ("instructions", "greeting", "llm_", "stt_", "tts_", "tools", "origins"):
        assert private not in text


def test_public_persona_media_urls_are_absolute_for_other_sites(client, persona):
    body = client.get("/voice-widget/api/personas/ben/").json()
    assert body["poster_url"].startswith("http://testserver/media/voice_widget/previews/ben/")
    assert body["idle_clip_url"] == "https://cdn.example.com/ben-idle.mp4"


def test_unknown_and_inactive_personas_are_404(client):
    make_persona(slug="old", is_active=False)
    for slug in ("old", "nobody"):
        response = client.get(f"/voice-widget/api/personas/{slug}/")
        assert response.status_code == 404
        assert response.json() == {
            "error": "persona_not_found",
            "detail": "There is no active assistant with this name.",
        }
