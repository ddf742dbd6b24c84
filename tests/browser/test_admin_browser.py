"""The persona admin in real headless Chromium at a laptop size (1280×800)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import ARTIFACTS
from tests.factories import make_persona

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
PASSWORD = "editor-pass-123"
REALTIME_FIELDS = [
    "realtime_provider",
    "realtime_model",
    "realtime_voice",
    "realtime_use_tts",
    "realtime_turn_detection",
    "realtime_silence_duration_ms",
]


def _logged_in(browser: Any, live_server: Any, **options: Any) -> Iterator[Any]:
    if not get_user_model().objects.filter(username="editor").exists():
        get_user_model().objects.create_superuser("editor", "editor@example.com", PASSWORD)
    context = browser.new_context(viewport=LAPTOP, locale="en-US", **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.live_url = live_server.url
    page.js_errors = errors
    yield page
    context.close()


@pytest.fixture
def admin_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A Chromium page logged in to admin through the login form, as an editor would."""
    yield from _logged_in(browser, live_server)


@pytest.fixture
def admin_page_without_js(browser: Any, live_server: Any) -> Iterator[Any]:
    yield from _logged_in(browser, live_server, java_script_enabled=False)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def height(page: Any) -> int:
    return page.evaluate("() => document.documentElement.scrollHeight")


def visible(page: Any, field: str) -> bool:
    return page.locator(f"#id_{field}").is_visible()


def change_page(page: Any, persona: Any) -> None:
    page.goto(f"{page.live_url}/admin/voice_widget/persona/{persona.pk}/change/")


def test_pipeline_persona_hides_realtime_fields_and_is_short(admin_page):
    persona = make_persona(name="Paula", slug="paula")
    change_page(admin_page, persona)
    shot(admin_page, "admin-persona-pipeline")

    assert not any(visible(admin_page, name) for name in REALTIME_FIELDS)
    for name in ("stt_provider", "llm_model", "tts_voice", "stt_keyterms"):
        assert visible(admin_page, name), name
    # Fields of providers or modes not chosen stay out of sight too.
    for name in ("llm_base_url", "azure_endpoint", "tts_instructions", "avatar_id"):
        assert not visible(admin_page, name), name
    # The form's own height (was about 5,400 px with every field shown), without the "Try it
    # here" and History panels above and below it.
    panels = admin_page.evaluate(
        "() => ['#try-it', '#versions'].map((s) => document.querySelector(s))"
        ".reduce((sum, el) => sum + (el ? el.getBoundingClientRect().height : 0), 0)"
    )
    assert height(admin_page) - panels < 3100  # each folded section adds ~45 px
    assert admin_page.js_errors == []


def test_switching_to_realtime_shows_its_fields(admin_page):
    persona = make_persona(name="Paula", slug="paula")
    change_page(admin_page, persona)
    admin_page.select_option("#id_pipeline_kind", "realtime")
    assert all(visible(admin_page, name) for name in REALTIME_FIELDS)
    assert not visible(admin_page, "stt_provider") and not visible(admin_page, "tts_voice")
    admin_page.check("#id_realtime_use_tts")  # the TTS voice speaks the answers
    assert visible(admin_page, "tts_voice") and not visible(admin_page, "llm_model")
    admin_page.select_option("#id_realtime_turn_detection", "semantic_vad")
    assert visible(admin_page, "realtime_eagerness")
    assert not visible(admin_page, "realtime_silence_duration_ms")
    admin_page.select_option("#id_realtime_provider", "azure_openai")
    assert visible(admin_page, "azure_endpoint")
    shot(admin_page, "admin-persona-realtime")


def test_provider_choice_shows_its_fields_and_voices(admin_page):
    persona = make_persona(name="Paula", slug="paula")
    change_page(admin_page, persona)
    voice = admin_page.locator("#id_tts_voice")
    assert voice.get_attribute("list") == "id_tts_voice_voices_cartesia"
    admin_page.select_option("#id_tts_provider", "openai")
    assert voice.get_attribute("list") == "id_tts_voice_voices_openai"
    assert visible(admin_page, "tts_instructions")
    admin_page.select_option("#id_llm_provider", "openai_compatible")
    assert visible(admin_page, "llm_base_url")
    admin_page.select_option("#id_avatar_provider", "bey")
    admin_page.select_option("#id_preview_mode", "poster")
    assert visible(admin_page, "avatar_id") and visible(admin_page, "preview_image_url")


def test_tools_are_readable(admin_page):
    persona = make_persona(name="Paula", slug="paula")
    change_page(admin_page, persona)
    tools = admin_page.locator("#id_enabled_tools label").first.bounding_box()
    assert tools["width"] > 400  # was about 130 px, a few words per line


def test_without_javascript_every_field_is_there(admin_page_without_js):
    page = admin_page_without_js
    persona = make_persona(name="Paula", slug="paula")
    change_page(page, persona)
    assert all(visible(page, name) for name in [*REALTIME_FIELDS, "stt_provider", "tts_voice"])
    assert page.locator("#id_tts_voice").get_attribute("list") == "id_tts_voice_voices_cartesia"


def test_persona_list_fits_a_laptop_screen(admin_page):
    make_persona(name="Paula", slug="paula")
    make_persona(
        name="Ben the realtime agent",
        slug="ben-realtime",
        pipeline_kind="realtime",
        realtime_provider="azure_openai",
        realtime_model="gpt-realtime",
        azure_endpoint="https://my-resource.openai.azure.com",
        turn_detection="realtime_llm",
    )
    admin_page.goto(f"{admin_page.live_url}/admin/voice_widget/persona/")
    shot(admin_page, "admin-persona-list")
    # The table scrolls inside its box when too wide: its last column must end inside that box.
    last = admin_page.locator("#result_list thead th").last.bounding_box()
    box = admin_page.locator("#changelist .results").bounding_box()
    assert last["x"] + last["width"] <= box["x"] + box["width"] <= LAPTOP["width"]
    assert "Updated" in admin_page.locator("#result_list thead th").last.inner_text().title()
