"""The consent notice, the text box, formatted captions and the feedback form in real
Chromium, at laptop (1366x600) and phone (390x844) sizes, used with the keyboard alone; the
room is the page's room test double (see test_widget_browser.py), the API is the real one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.test_widget_browser import (
    ROOM_DOUBLE,
    WIDGET,
    record_events,
    screenshot_path,
    wait_for_state,
)
from voice_widget.models import Conversation, Persona

pytestmark = pytest.mark.browser

SIZES = {"laptop": (1366, 600), "phone": (390, 844)}
NOTICE = "This conversation is recorded and processed by AI providers."

#: The room double learns to send text, as livekit-room.js does (lk.chat).
SEND_TEXT = """() => {
  const room = window.roomDouble;
  room.sendText = async (text) => { room.calls.push('sendText:' + text); };
}"""


@pytest.fixture
def sized_page(browser: Any, site: Any, worker_alive: None, request: Any):
    """``sized_page("phone")``: a page of the example site at that size."""
    contexts = []

    def open_page(size: str) -> Any:
        width, height = SIZES[size]
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale="en-US",
            is_mobile=width < 500,
            has_touch=width < 500,
        )
        context.grant_permissions(["microphone"], origin=site.url)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.route("**/*", lambda route: route.abort())
        for page in context.pages:
            page.goto("about:blank")
        context.close()


def open_with_room_double(page: Any, site: Any) -> None:
    page.goto(site.url + "/")
    page.wait_for_function(
        "customElements.get('voice-widget') && !document.querySelector('voice-widget')"
        ".shadowRoot.querySelector('.vw').hidden"
    )
    page.evaluate(ROOM_DOUBLE)
    page.evaluate(SEND_TEXT)
    record_events(page)


def focused(page: Any) -> str:
    """The class of the element focused inside the widget."""
    return page.evaluate(
        "document.querySelector('voice-widget').shadowRoot.activeElement?.className || ''"
    )


def tab_to(page: Any, class_name: str, limit: int = 25) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if class_name in focused(page).split():
            return
    raise AssertionError(f"Tab never reached .{class_name}")


@pytest.mark.parametrize("size", SIZES)
def test_consent_notice_by_keyboard_then_a_typed_message_and_feedback(sized_page, site, size):
    Persona.objects.filter(slug="ben").update(
        consent_text=NOTICE,
        consent_url="https://linden.example/privacy/",
        feedback_enabled=True,
    )
    page = sized_page(size)
    open_with_room_double(page, site)

    # Keyboard only: Tab to the launcher, Enter; the notice takes the focus.
    tab_to(page, "launcher")
    page.keyboard.press("Enter")
    wait_for_state(page, "consent")
    page.wait_for_function(
        "document.querySelector('voice-widget').shadowRoot.activeElement?.classList"
        ".contains('accept')"
    )
    notice = page.locator(f"{WIDGET} .consent")
    assert NOTICE in notice.inner_text()
    assert page.locator(f"{WIDGET} .accept").get_attribute("aria-describedby") == "vw-consent"
    # The whole notice and its buttons are on screen.
    box = notice.bounding_box()
    width, height = SIZES[size]
    assert box["y"] >= 0 and box["y"] + box["height"] <= height and box["width"] <= width
    page.screenshot(path=str(screenshot_path(f"consent-{size}")))
    assert Conversation.objects.count() == 0
    assert "enableMicrophone" not in page.evaluate("window.roomDouble.calls")

    # Shift+Tab reaches the privacy link and "Not now"; Enter on Accept starts.
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "secondary decline"
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "consent-link"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    with page.expect_request(lambda r: r.url.endswith("/api/sessions/")) as session_request:
        page.keyboard.press("Enter")
    body = json.loads(session_request.value.post_data)
    assert body["consent"]["version"] == Persona.objects.get(slug="ben").consent_version
    wait_for_state(page, "active")
    assert Conversation.objects.get().consent_text == NOTICE

    # Typing: the text box sends on lk.chat; the line shows as the visitor's.
    page.wait_for_selector(f"{WIDGET} .chat-input")
    tab_to(page, "chat-input")
    page.keyboard.type("Do you have cargo bikes?")
    page.keyboard.press("Enter")
    page.wait_for_function("window.roomDouble.calls.includes('sendText:Do you have cargo bikes?')")
    typed = page.locator(f"{WIDGET} .line[data-role='user']")
    assert typed.inner_text().endswith("Do you have cargo bikes?")
    assert page.locator(f"{WIDGET} .chat-input").input_value() == ""
    # The answer: emphasis and a link become nodes; the model's HTML stays text.
    page.evaluate(
        """() => window.roomDouble.emit('transcription', {streamId: 'a1', segmentId: 'SG_1',
          role: 'agent', done: true, final: true,
          delta: 'Yes, the **Linden Cargo**: https://linden.example/cargo/ '
               + '<img src=x onerror="window.pwned=1"> [x](javascript:alert(1))'})"""
    )
    answer = page.locator(f"{WIDGET} .line[data-role='agent']")
    assert answer.locator("strong").inner_text() == "Linden Cargo"
    link = answer.locator("a")
    assert link.count() == 1
    assert link.get_attribute("href") == "https://linden.example/cargo/"
    assert link.get_attribute("target") == "_blank"
    assert answer.locator("img").count() == 0
    assert "<img src=x" in answer.inner_text()
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(screenshot_path(f"typed-{size}")))

    # The end, then a rating and a comment by keyboard.
    with page.expect_request(lambda r: r.url.endswith("/end/")):
        page.locator(f"{WIDGET} .end").click()
    wait_for_state(page, "ended")
    page.wait_for_selector(f"{WIDGET} .feedback .up")
    tab_to(page, "down")
    with page.expect_request(lambda r: r.url.endswith("/feedback/")) as rating:
        page.keyboard.press("Space")
    assert json.loads(rating.value.post_data)["rating"] == "down"
    page.wait_for_function(
        "document.querySelector('voice-widget').shadowRoot.querySelector('.thanks')"
        ".textContent === 'Thank you for your feedback.'"
    )
    assert page.locator(f"{WIDGET} .down").get_attribute("aria-pressed") == "true"
    tab_to(page, "comment")
    page.keyboard.type("It did not know the prices.")
    page.keyboard.press("Tab")
    with page.expect_request(lambda r: r.url.endswith("/feedback/")):
        page.keyboard.press("Enter")
    page.wait_for_selector(f"{WIDGET} .comment", state="hidden")
    conversation = Conversation.objects.get()
    assert (conversation.feedback_rating, conversation.feedback_comment) == (
        "down",
        "It did not know the prices.",
    )
    page.screenshot(path=str(screenshot_path(f"feedback-{size}")))
    assert page.errors == []


def test_declining_the_notice_opens_nothing_and_asks_again_next_time(sized_page, site):
    Persona.objects.filter(slug="ben").update(consent_text=NOTICE)
    page = sized_page("laptop")
    open_with_room_double(page, site)
    page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page, "consent")
    page.locator(f"{WIDGET} .decline").click()
    wait_for_state(page, "idle")
    assert Conversation.objects.count() == 0
    page.locator(f"{WIDGET} .start").click()
    wait_for_state(page, "consent")


def test_an_acceptance_is_remembered_across_pages_until_it_expires(sized_page, site, settings):
    # Each page starts a conversation of its own (none is resumed from the page before).
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RESUME_WINDOW": 0}
    Persona.objects.filter(slug="ben").update(consent_text=NOTICE)
    page = sized_page("laptop")
    open_with_room_double(page, site)
    page.locator(f"{WIDGET} .launcher").click()
    page.locator(f"{WIDGET} .accept").click()
    wait_for_state(page, "active")
    stored = page.evaluate("Object.keys(localStorage)")
    assert [key for key in stored if key.startswith("voice-widget:consent:ben:")]

    # Another page of the site: no notice.
    page.goto(site.url + "/contact/")
    page.wait_for_function("customElements.get('voice-widget') !== undefined")
    page.evaluate(ROOM_DOUBLE)
    page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page, "active")

    # Older than the widget's consent-max-age: asked again.
    page.goto(site.url + "/")
    page.wait_for_function("customElements.get('voice-widget') !== undefined")
    page.evaluate(
        """() => { for (const key of Object.keys(localStorage))
                     localStorage.setItem(key, String(Date.now() - 31 * 24 * 3600 * 1000)); }"""
    )
    page.evaluate(ROOM_DOUBLE)
    page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page, "consent")


@pytest.mark.parametrize("size", SIZES)
def test_a_type_only_persona_asks_for_no_microphone(sized_page, site, size):
    Persona.objects.filter(slug="ben").update(interaction_mode="text")
    page = sized_page(size)
    open_with_room_double(page, site)
    page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page, "active")
    page.wait_for_selector(f"{WIDGET} .chat-input")
    # The text box takes the focus (there is no microphone to mute).
    page.wait_for_function(
        "document.querySelector('voice-widget').shadowRoot.activeElement?.classList"
        ".contains('chat-input')"
    )
    calls = page.evaluate("window.roomDouble.calls")
    for call in ("enableMicrophone", "startAudio", "playRemoteAudio"):
        assert call not in calls
    assert page.locator(f"{WIDGET} .mute").is_hidden()
    assert page.locator(f"{WIDGET} .chat-input").get_attribute("aria-label") == "Type a message"
    page.screenshot(path=str(screenshot_path(f"type-only-{size}")))


def test_a_talk_only_persona_has_no_text_box(sized_page, site):
    Persona.objects.filter(slug="ben").update(interaction_mode="voice")
    page = sized_page("laptop")
    open_with_room_double(page, site)
    page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page, "active")
    page.wait_for_timeout(300)  # the panels chunk has loaded by now
    assert page.locator(f"{WIDGET} .chat-box").is_hidden()
    assert "enableMicrophone" in page.evaluate("window.roomDouble.calls")
