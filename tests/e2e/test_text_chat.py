"""Type or talk, feedback and consent in a conversation that really happens: the widget on
the example site, the real worker and the doubles. Typing a question gets a typed reply in
the captions and both are recorded as turns (the question marked typed); a type-only
persona asks for no microphone and uses no speech models; the visitor accepts the consent
notice before the first start and rates the conversation at its end."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conversation import (
    LAPTOP,
    PHONE,
    WIDGET,
    Visit,
    latest_conversation,
    silence,
    use_the_doubles,
    wait_for_ending,
    wait_until,
)
from voice_widget.models import Conversation, Turn

pytestmark = [pytest.mark.e2e, pytest.mark.agent]

GREETING = "Hi, I'm Ben from Linden Bikes. What can I help you with?"
QUESTION = "Do you have cargo bikes?"
NOTICE = "This conversation is recorded and processed by AI providers."

#: Microphone requests and the widget's other events, as the page saw them.
PAGE_PROBE = """
(() => {
  window.micRequests = 0;
  const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => {
    if (constraints && constraints.audio) window.micRequests += 1;
    return ask(constraints);
  };
  window.moreEvents = [];
  for (const name of ['voice-widget:feedback', 'voice-widget:consent']) {
    document.addEventListener(name, (event) => window.moreEvents.push({ name, ...event.detail }));
  }
})();
"""


@pytest.fixture
def visit(playwright_sync: Any, shop: Any, tmp_path: Any, request: Any):
    opened: list[Visit] = []

    def open_visit(viewport: tuple[int, int] = LAPTOP) -> Visit:
        visitor = Visit(playwright_sync, shop.url, silence(tmp_path), request.node.name, viewport)
        visitor.page.add_init_script(PAGE_PROBE)
        opened.append(visitor)
        return visitor

    yield open_visit
    for visitor in opened:
        visitor.close()


def typed_lines(conversation: Conversation) -> list[tuple[str, str, bool]]:
    return list(
        Turn.objects.filter(conversation=conversation)
        .order_by("sequence")
        .values_list("role", "text", "typed")
    )


def type_question(visitor: Visit, text: str) -> None:
    """Types ``text`` once the agent has finished speaking (typing earlier interrupts it)."""
    visitor.page.wait_for_function(
        "document.querySelector('voice-widget').controller.agentState === 'listening'",
        timeout=30000,
    )
    box = visitor.page.locator(WIDGET + ".chat-input")
    box.click()
    box.fill(text)
    box.press("Enter")


def test_consent_then_a_typed_question_gets_a_typed_reply_recorded_as_turns_then_feedback(
    visit, openai_server
):
    use_the_doubles(
        "ben",
        feedback_enabled=True,
        consent_text=NOTICE,
        consent_url="https://linden.example/privacy/",
    )
    answer = "Yes, we have **three cargo bikes**: see https://linden.example/cargo/ for them."
    openai_server.script(default_reply=answer)
    visitor = visit(LAPTOP)
    visitor.open("/")

    # The first click shows the notice; nothing is opened or asked before it is accepted.
    visitor.click(".launcher")
    visitor.wait_for_state("consent")
    notice = visitor.page.locator(WIDGET + ".consent")
    notice.wait_for(state="visible")
    assert NOTICE in notice.inner_text()
    link = visitor.page.locator(WIDGET + ".consent-link")
    assert link.get_attribute("href") == "https://linden.example/privacy/"
    accept = visitor.page.locator(WIDGET + ".accept")
    wait_until(lambda: accept.evaluate("b => b.getRootNode().activeElement === b"), 5, "focus")
    assert accept.get_attribute("aria-describedby") == "vw-consent"
    visitor.screenshot("consent-laptop")
    assert latest_conversation() is None
    assert visitor.page.evaluate("window.micRequests") == 0

    visitor.page.keyboard.press("Enter")  # the keyboard accepts, like a click
    visitor.wait_for_state("active")
    assert visitor.wait_for_caption("agent", 1) == [GREETING]
    conversation = latest_conversation()
    assert conversation.consent_text == NOTICE
    assert conversation.consent_version and conversation.consent_at

    type_question(visitor, QUESTION)
    replies = visitor.wait_for_caption("agent", 2, timeout=40)
    assert replies[1] == answer.replace("**", "") or replies[1] == answer
    typed = [e for e in visitor.events("voice-widget:transcript") if e.get("typed")]
    assert [(e["role"], e["text"]) for e in typed] == [("user", QUESTION)]
    # The question reached the model as the visitor's message, typed not transcribed.
    last_prompt = openai_server.requests[-1]["messages"]
    assert last_prompt[-1] == {"role": "user", "content": QUESTION}
    assert all(not t.transcript for t in openai_server.transcriptions)

    # The answer's emphasis and link are DOM nodes in the caption, not HTML from the model.
    line = visitor.page.locator(WIDGET + '.line[data-role="agent"]').nth(1)
    assert line.locator("strong").inner_text() == "three cargo bikes"
    href = line.locator("a").get_attribute("href")
    assert href == "https://linden.example/cargo/"
    assert line.locator("a").get_attribute("rel") == "noopener noreferrer nofollow"
    assert visitor.page.locator(WIDGET + ".chat-input").input_value() == ""
    visitor.screenshot("typed-conversation-laptop")

    wait_until(lambda: len(typed_lines(conversation)) >= 3, 10, "three turns")
    assert typed_lines(conversation)[:3] == [
        ("agent", GREETING, False),
        ("user", QUESTION, True),
        ("agent", answer, False),
    ]

    # At the end, a rating and a comment, by keyboard.
    visitor.click(".end")
    visitor.wait_for_state("ended")
    wait_for_ending()
    up = visitor.page.locator(WIDGET + ".feedback .up")
    up.wait_for(state="visible")
    assert up.get_attribute("aria-label") == "Helpful"
    up.focus()
    visitor.page.keyboard.press("Enter")
    thanks = visitor.page.locator(WIDGET + ".thanks")
    wait_until(lambda: thanks.inner_text() == "Thank you for your feedback.", 10, "thanks")
    assert up.get_attribute("aria-pressed") == "true"
    wait_until(
        lambda: Conversation.objects.get(pk=conversation.pk).feedback_rating == "up", 10, "rating"
    )
    comment = visitor.page.locator(WIDGET + ".comment")
    comment.fill("Quick and clear.")
    visitor.screenshot("feedback-laptop")
    visitor.page.locator(WIDGET + ".post").click()
    wait_until(
        lambda: Conversation.objects.get(pk=conversation.pk).feedback_comment == "Quick and clear.",
        10,
        "the comment",
    )
    assert comment.is_hidden()
    events = visitor.page.evaluate("window.moreEvents")
    assert [e["name"] for e in events] == [
        "voice-widget:consent",
        "voice-widget:feedback",
        "voice-widget:feedback",
    ]

    # The acceptance is remembered: starting again asks nothing.
    visitor.click(".again")
    visitor.wait_for_state("connecting")
    visitor.click(".end")
    visitor.wait_for_state("ended")


def test_a_type_only_persona_on_a_phone_asks_no_microphone_and_speaks_nothing(visit, openai_server):
    use_the_doubles("ben", interaction_mode="text")
    openai_server.script(default_reply="We are open from nine to six.")
    visitor = visit(PHONE)
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("active")
    assert visitor.wait_for_caption("agent", 1) == [GREETING]
    assert visitor.page.locator(WIDGET + ".mute").is_hidden()

    type_question(visitor, "When are you open?")
    assert visitor.wait_for_caption("agent", 2, timeout=40)[1] == "We are open from nine to six."
    visitor.screenshot("type-only-phone")

    conversation = latest_conversation()
    wait_until(lambda: len(typed_lines(conversation)) >= 3, 10, "three turns")
    assert typed_lines(conversation)[:3] == [
        ("agent", GREETING, False),
        ("user", "When are you open?", True),
        ("agent", "We are open from nine to six.", False),
    ]
    # No microphone asked, nothing heard, no speech models called.
    assert visitor.page.evaluate("window.micRequests") == 0
    assert visitor.probe()["remote"] == []
    assert openai_server.speeches == []
    assert openai_server.transcriptions == []
    visitor.click(".end")
    assert wait_for_ending().end_reason == "client_end"
