"""SIGTERM to the worker in the middle of a conversation: it is recorded as worker_shutdown
and every turn said so far is kept. (Its own module: the test stops its module's worker.)"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from tests.e2e.conversation import (
    Visit,
    latest_conversation,
    speech,
    turns,
    use_the_doubles,
    wait_for_ending,
    wait_until,
)
from voice_widget.models import ConversationStatus

pytestmark = [pytest.mark.e2e, pytest.mark.agent]

#: Running conversations get two seconds to finish after SIGTERM, then they are shut down.
WORKER_ARGS = ("--drain-timeout", "2")
QUESTION = "Can I test ride a bike on Saturday?"
ANSWER = "Yes, on Saturdays from half past nine."


def test_sigterm_mid_conversation_ends_it_as_worker_shutdown_keeping_every_turn(
    playwright_sync: Any,
    shop: Any,
    worker: Any,
    livekit_server: Any,
    openai_server: Any,
    tmp_path: Any,
):
    use_the_doubles("ben")
    openai_server.script(transcript=QUESTION, default_reply=ANSWER)
    # The question after 12 s: the greeting has played out even on a busy machine.
    wav = speech(tmp_path, QUESTION, lead=12.0)
    visitor = Visit(playwright_sync, shop.url, wav, "sigterm")
    try:
        visitor.open("/")
        visitor.click(".launcher")
        visitor.wait_for_state("active")
        visitor.wait_for_caption("agent", 2, timeout=60)
        conversation = latest_conversation()
        wait_until(lambda: len(turns(conversation)) >= 3, 10, "three turns")

        updates_before = len(livekit_server.worker_updates)
        stopping = time.monotonic()
        assert worker.terminate(signal.SIGTERM, timeout=30) == 0
        # It drained (told LiveKit it takes no new jobs) and exited soon after the drain timeout.
        assert time.monotonic() - stopping < 2 + 15
        statuses = [u["status"] for u in livekit_server.worker_updates[updates_before:]]
        assert "WS_FULL" in statuses, statuses

        ended = wait_for_ending()
        assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "worker_shutdown")
        assert turns(ended)[:3] == [
            ("agent", "Hi, I'm Ben from Linden Bikes. What can I help you with?"),
            ("user", QUESTION),
            ("agent", ANSWER),
        ]
        # The agent told the visitor before its room went away (livekit-agents awaits the
        # worker's on_session_end before it disconnects): not a lost connection.
        visitor.wait_for_state("ended")
        assert visitor.text(".note") == "The conversation ended because of a problem on our side."
        assert [e["reason"] for e in visitor.events("voice-widget:ended")] == ["worker_shutdown"]
    finally:
        visitor.close()
