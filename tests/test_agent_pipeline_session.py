"""The worker on a session built by the real ``build_session_plan`` (real plugin objects;
nothing reaches a provider, because the conversation here is typed and the model is local)."""

from __future__ import annotations

import pytest
from livekit.agents import AgentSession
from livekit.plugins import silero

from agent_runner.conversation import ConversationRunner
from agent_runner.pipeline import build_session_plan
from agent_runner.protocol import RoomSignals
from tests.agent_support import new_conversation, settle, transcript
from tests.doubles.openai_server import ChatCompletionsServerDouble
from tests.doubles.room import DoubleRoom

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]


async def test_runner_drives_a_session_built_by_the_real_pipeline(monkeypatch):
    for name in ("DEEPGRAM_API_KEY", "CARTESIA_API_KEY"):
        monkeypatch.setenv(name, "placeholder")
    async with ChatCompletionsServerDouble(["We are open ", "until half past six."]) as server:
        conversation = await new_conversation(
            llm_provider="openai_compatible",
            llm_base_url=server.base_url,
            llm_model="local-model",
            turn_detection="vad",
            greeting="Hello from Ben.",
        )
        plan = build_session_plan(conversation.persona_settings, vad=silero.VAD.load())
        session = AgentSession(**plan.session_kwargs)
        room = DoubleRoom(visitor=conversation.identity)
        runner = ConversationRunner(
            conversation=conversation, session=session, signals=RoomSignals(room), room=room
        )
        await runner.start()
        answer = await room.call_rpc("voice_widget.start", caller=conversation.identity)
        assert answer == {"ok": True}
        await settle(session)
        await session.run(user_input="When are you open?")
        await runner.request_end("client_end")

    assert [line[1:] for line in await transcript(conversation)] == [
        ("agent", "Hello from Ben."),
        ("user", "When are you open?"),
        ("agent", "We are open until half past six."),
    ]
