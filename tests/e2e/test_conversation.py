"""A conversation that really happens: the widget on the example site and the real worker
meet in a room of the LiveKit double, with speech from Chromium's fake microphone, and the
record in the database says what happened and how it ended."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conversation import (
    Visit,
    latest_conversation,
    silence,
    speech,
    turns,
    use_the_doubles,
    wait_for_ending,
    wait_until,
)
from voice_widget.models import ConversationStatus

pytestmark = [pytest.mark.e2e, pytest.mark.agent]

QUESTION = "What are your opening hours?"
GREETING = "Hi, I'm Ben from Linden Bikes. What can I help you with?"


@pytest.fixture
def visit(playwright_sync: Any, shop: Any, tmp_path: Any, request: Any):
    """``visit(wav)`` opens a visitor's Chromium whose microphone plays ``wav``."""
    opened: list[Visit] = []

    def open_visit(wav: Any) -> Visit:
        visitor = Visit(playwright_sync, shop.url, wav, request.node.name)
        opened.append(visitor)
        return visitor

    yield open_visit
    for visitor in opened:
        visitor.close()


def test_click_to_talk_greets_hears_the_question_answers_and_records_it(
    visit, openai_server, tmp_path
):
    use_the_doubles("ben")
    openai_server.script(transcript=QUESTION, default_reply="We are open from nine to six.")
    visitor = visit(speech(tmp_path, QUESTION))
    visitor.open("/")

    # Nothing said or heard before the click: no conversation, no connection, no speech.
    visitor.page.wait_for_timeout(1000)
    assert latest_conversation() is None
    assert visitor.probe()["peerConnections"] == 0
    assert openai_server.speeches == []

    visitor.click(".launcher")
    visitor.wait_for_state("active")
    clicked = visitor.probe()["clicks"][-1]

    # The greeting, as a caption and as sound.
    assert visitor.wait_for_caption("agent", 1)[0] == GREETING
    wait_until(lambda: visitor.heard_after(clicked), 10, "the greeting's sound")
    assert " ".join(openai_server.spoken_texts).startswith(GREETING)

    # The spoken question reaches STT; the answer comes back as caption and sound.
    assert visitor.wait_for_caption("user", 1, timeout=40) == [QUESTION]
    assert visitor.wait_for_caption("agent", 2)[1] == "We are open from nine to six."
    heard = openai_server.transcriptions
    assert any(t.has_speech and t.transcript == QUESTION for t in heard)
    assert {t.language for t in heard} == {"en"}
    visitor.screenshot("conversation-laptop")

    conversation = latest_conversation()
    wait_until(lambda: len(turns(conversation)) >= 3, 10, "three turns")
    assert turns(conversation)[:3] == [
        ("agent", GREETING),
        ("user", QUESTION),
        ("agent", "We are open from nine to six."),
    ]

    visitor.click(".end")
    visitor.wait_for_state("ended")
    ended = wait_for_ending()
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "client_end")
    assert ended.agent_joined_at and ended.started_at


def test_silence_does_not_reach_the_model(visit, openai_server, tmp_path):
    use_the_doubles("ben")
    visitor = visit(silence(tmp_path))
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("active")
    assert visitor.wait_for_caption("agent", 1) == [GREETING]
    visitor.page.wait_for_timeout(3000)
    assert visitor.captions("user") == []
    assert all(not t.transcript for t in openai_server.transcriptions)
    visitor.click(".end")
    assert wait_for_ending().end_reason == "client_end"
