"""A conversation that really happens: the widget on the example site and the real worker
meet in a room of the LiveKit double, with speech from Chromium's fake microphone, and the
record in the database says what happened and how it ended."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conversation import (
    LAPTOP,
    PHONE,
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

    def open_visit(wav: Any, viewport: tuple[int, int] = LAPTOP) -> Visit:
        visitor = Visit(playwright_sync, shop.url, wav, request.node.name, viewport)
        opened.append(visitor)
        return visitor

    yield open_visit
    for visitor in opened:
        visitor.close()


def test_click_to_talk_greets_hears_the_question_answers_and_records_it(
    visit, openai_server, livekit_server, worker, tmp_path
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
    # The answer keeps how long it took, from the worker's livekit-agents metrics.
    answer = conversation.turns.order_by("sequence")[2]
    assert answer.e2e_latency > 0 and answer.eou_delay is not None
    assert answer.llm_ttft is not None and answer.tts_ttfb is not None

    visitor.click(".end")
    visitor.wait_for_state("ended")
    ended = wait_for_ending()
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "client_end")
    assert ended.agent_joined_at and ended.started_at
    # The agent and the visitor have left; the room is gone.
    wait_until(lambda: ended.room_name not in livekit_server.rooms, 10, "the room emptied")

    # The worker's output, its job processes' lines included, is one JSON object a line.
    lines = worker.log_lines()
    assert any(str(ended.pk) in line and '"name": "agent_runner.' in line for line in lines)
    for line in lines:
        assert isinstance(json.loads(line), dict), line


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


def test_the_german_persona_on_a_phone_greets_hears_and_answers_in_german(
    visit, openai_server, tmp_path
):
    question = "Wann haben Sie geöffnet?"
    answer = "Wir haben von neun bis achtzehn Uhr geöffnet."
    use_the_doubles("paula")
    openai_server.script(transcript=question, default_reply=answer)
    visitor = visit(speech(tmp_path, question, lang="de"), PHONE)
    visitor.open("/bikes/linden-city/")
    visitor.click(".start")
    visitor.wait_for_state("active")

    greeting = "Hallo, ich bin Paula von Linden Bikes. Wie kann ich Ihnen helfen?"
    assert visitor.wait_for_caption("agent", 1) == [greeting]
    assert visitor.wait_for_caption("user", 1, timeout=40) == [question]
    assert visitor.wait_for_caption("agent", 2)[1] == answer
    visitor.page.locator("voice-widget").scroll_into_view_if_needed()
    visitor.screenshot("conversation-de-phone")
    assert {t.language for t in openai_server.transcriptions} == {"de"}
    # The product page's facts reached the model, vouched for by the site.
    prompt = json.dumps(openai_server.requests[0]["messages"], ensure_ascii=False)
    assert "Linden City" in prompt

    conversation = latest_conversation()
    wait_until(lambda: len(turns(conversation)) >= 3, 10, "three turns")
    assert turns(conversation)[:3] == [("agent", greeting), ("user", question), ("agent", answer)]
    visitor.click(".end")
    assert wait_for_ending().end_reason == "client_end"


def test_max_duration_says_the_closing_line_and_is_recorded_as_max_duration(
    visit, openai_server, tmp_path
):
    closing = "Our time is up. Goodbye!"
    use_the_doubles("ben", max_duration_seconds=8, closing_message=closing)
    visitor = visit(silence(tmp_path))
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("active")
    visitor.wait_for_state("ended", timeout=40)

    assert visitor.text(".note") == "The conversation reached its time limit."
    ended = wait_for_ending()
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "max_duration")
    assert closing in " ".join(openai_server.spoken_texts)
    assert turns(ended)[-1] == ("agent", closing)
    assert [e["reason"] for e in visitor.events("voice-widget:ended")] == ["max_duration"]


def test_the_model_ending_the_call_is_recorded_as_agent_end(visit, openai_server, tmp_path):
    goodbye = "Glad I could help. Goodbye!"
    use_the_doubles("ben")
    openai_server.script(
        transcript="That is all, thank you.",
        replies=[{"tool": "end_conversation", "arguments": {}, "text": goodbye}],
    )
    visitor = visit(speech(tmp_path, "That is all, thank you."))
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("ended", timeout=60)

    ended = wait_for_ending()
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "agent_end")
    assert "end_conversation" in json.dumps(openai_server.requests[0]["tools"])
    assert visitor.text(".note") == "The conversation has ended."
    assert [e["reason"] for e in visitor.events("voice-widget:ended")] == ["agent_end"]


def test_closing_the_tab_is_recorded_as_participant_left(visit, tmp_path):
    use_the_doubles("ben")
    visitor = visit(silence(tmp_path))
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("active")
    visitor.wait_for_caption("agent", 1)
    visitor.page.close(run_before_unload=True)

    ended = wait_for_ending()
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "participant_left")


LIVE_PREVIEW = {
    "preview_mode": "live",
    "avatar_provider": "bey",
    "avatar_id": "b9be11b8-89fb-4227-8f86-4a881393cbdb",
}


def test_a_preview_nobody_clicks_ends_with_idle_timeout(visit, tmp_path):
    use_the_doubles("paula", preview_idle_seconds=8, **LIVE_PREVIEW)
    visitor = visit(silence(tmp_path))
    visitor.open("/bikes/linden-city/")
    visitor.page.locator("voice-widget").scroll_into_view_if_needed()

    joined = wait_until(
        lambda: (c := latest_conversation()) and c.agent_joined_at and c, 40, "the agent joining"
    )
    assert joined.started_at is None
    ended = wait_for_ending(timeout=40)
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "idle_timeout")
    assert ended.started_at is None
    assert [role for role, _ in turns(ended)] == ["system"]  # the avatar note, nothing said
    visitor.wait_for_state("idle")
    assert visitor.heard_after(0) == []


def test_a_live_preview_whose_avatar_service_is_down_continues_voice_only(visit, tmp_path):
    use_the_doubles("paula", **LIVE_PREVIEW)
    visitor = visit(silence(tmp_path))
    visitor.open("/bikes/linden-city/")
    visitor.page.locator("voice-widget").scroll_into_view_if_needed()
    visitor.click(".start")
    visitor.wait_for_state("active", timeout=60)
    clicked = visitor.probe()["clicks"][-1]

    greeting = "Hallo, ich bin Paula von Linden Bikes. Wie kann ich Ihnen helfen?"
    assert visitor.wait_for_caption("agent", 1) == [greeting]
    wait_until(lambda: visitor.heard_after(clicked), 10, "the greeting's sound")
    assert visitor.page.locator("voice-widget >> video.live").is_hidden()
    conversation = latest_conversation()
    note = turns(conversation)[0]
    assert note[0] == "system" and note[1].startswith("Avatar unavailable")
    assert note[1].endswith("continued voice-only.")
    visitor.click(".end")
    assert wait_for_ending().end_reason == "client_end"


def test_an_agent_that_cannot_join_is_a_recorded_failure_the_visitor_sees(
    visit, livekit_server, worker, tmp_path
):
    use_the_doubles("ben")
    livekit_server.refuse_agents = True
    try:
        visitor = visit(silence(tmp_path))
        visitor.open("/")
        visitor.click(".launcher")
        visitor.wait_for_state("error", timeout=25)
        assert visitor.text(".message-text") == (
            "The assistant could not join the conversation. Please try again in a moment."
        )
        # Told within seconds, not after the agent timeout (20 s by default).
        (error,) = visitor.events("voice-widget:error")
        assert error["code"] == "agent_failed"
        assert error["at"] - visitor.probe()["clicks"][-1] < 12000
    finally:
        livekit_server.refuse_agents = False

    failed = wait_for_ending()
    assert (failed.status, failed.end_reason) == (ConversationStatus.FAILED, "error")
    assert failed.end_detail.startswith(f"The agent could not join room {failed.room_name}: ")
    ours = [json.loads(line) for line in worker.log_lines() if '"name": "agent_runner"' in line]
    errors = [r for r in ours if r["level"] == "ERROR" and str(failed.pk) in r["message"]]
    assert len(errors) == 1 and failed.room_name in errors[0]["message"]
    assert "job crashed" not in worker.log_text()
