"""Surviving a reload: the widget in Chromium, the real worker and the LiveKit double. A reload
rejoins the same conversation (same room, its transcript shown) and the agent answers again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conversation import (
    LAPTOP,
    Visit,
    latest_conversation,
    speech,
    turns,
    use_the_doubles,
    wait_until,
)
from voice_widget.models import Conversation, ConversationStatus

pytestmark = [pytest.mark.e2e, pytest.mark.agent]

QUESTION = "What are your opening hours?"
ANSWER = "We are open from nine to six."
GREETING = "Hi, I'm Ben from Linden Bikes. What can I help you with?"


@pytest.fixture
def visit(playwright_sync: Any, shop: Any, request: Any):
    opened: list[Visit] = []

    def open_visit(wav: Any) -> Visit:
        visitor = Visit(playwright_sync, shop.url, wav, request.node.name, LAPTOP)
        opened.append(visitor)
        return visitor

    yield open_visit
    for visitor in opened:
        visitor.close()


def test_a_reload_rejoins_the_same_conversation_with_its_transcript_and_the_agent_answers(
    visit, openai_server, livekit_server, worker, tmp_path
):
    use_the_doubles("ben")
    openai_server.script(transcript=QUESTION, default_reply=ANSWER)
    visitor = visit(speech(tmp_path, QUESTION))
    visitor.open("/")
    visitor.click(".launcher")
    try:
        visitor.wait_for_state("active", timeout=60)
    except Exception:  # say why (the record's ending, the page's events), not just "timeout"
        started = latest_conversation()
        ending = started and (started.end_reason, started.end_detail)
        raise AssertionError(f"not active: {ending} {visitor.dump()}") from None
    assert visitor.wait_for_caption("agent", 1)[0] == GREETING
    assert visitor.wait_for_caption("user", 1, timeout=40) == [QUESTION]
    assert visitor.wait_for_caption("agent", 2)[1] == ANSWER
    conversation = latest_conversation()
    wait_until(lambda: len(turns(conversation)) >= 3, 10, "three turns")

    visitor.page.reload()
    visitor.wait_for_state("active")
    # The same conversation, not a new one, and nothing ended it.
    assert Conversation.objects.count() == 1
    conversation.refresh_from_db()
    assert conversation.is_open, (conversation.status, conversation.end_reason)
    assert [e["conversation"] for e in visitor.events("voice-widget:resumed")] == [
        str(conversation.pk)
    ]
    shown = visitor.text(".captions")
    assert GREETING in shown and QUESTION in shown and ANSWER in shown

    # The fake microphone plays the question again on the new page: the agent still listens
    # (the same identity relinked) and answers, in the same conversation's record.
    assert visitor.wait_for_caption("agent", 1, timeout=45) == [ANSWER]
    wait_until(lambda: len(turns(conversation)) >= 5, 10, "five turns")
    assert turns(conversation)[3:5] == [("user", QUESTION), ("agent", ANSWER)]
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.ACTIVE
    assert conversation.visitor_left_at is None
