"""The real livekit-plugins-openai LLM client, over HTTP, against a small OpenAI-compatible
chat-completions server on 127.0.0.1: its streamed reply becomes the agent's turn."""

from __future__ import annotations

import pytest
from livekit.plugins import openai

from tests.agent_support import build_runner, new_conversation, reload, settle, transcript
from tests.doubles.openai_server import ChatCompletionsServerDouble

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

REPLY_PARTS = ["We are ", "open until ", "half past six."]


async def test_streamed_reply_of_the_real_openai_client_is_saved_as_the_agents_turn():
    async with ChatCompletionsServerDouble(REPLY_PARTS) as server:
        conversation = await new_conversation(
            {"llm_provider": "openai_compatible", "llm_base_url": server.base_url},
            instructions="You answer questions about the shop.",
        )
        llm = openai.LLM(model="local-model", base_url=server.base_url, api_key="test")
        runner, _room = build_runner(conversation, llm, start_immediately=True)
        await runner.start()
        await settle(runner.session)  # the greeting first, as the visitor hears it

        await runner.session.run(user_input="How long are you open today?")
        await runner.request_end("client_end")

    assert len(server.requests) == 1
    request = server.requests[0]
    assert request["headers"]["Authorization"] == "Bearer test"
    assert request["json"]["model"] == "local-model" and request["json"]["stream"] is True
    messages = request["json"]["messages"]
    assert messages[0]["content"].startswith("You answer questions about the shop.")
    assert messages[-1] == {"role": "user", "content": "How long are you open today?"}

    assert await transcript(conversation) == [
        (1, "agent", "Hello! How can I help?"),
        (2, "user", "How long are you open today?"),
        (3, "agent", "We are open until half past six."),
    ]
    usage = (await reload(conversation)).usage
    assert usage["llm_input_tokens"] == 42 and usage["llm_output_tokens"] == 7
