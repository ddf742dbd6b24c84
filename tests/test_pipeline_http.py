"""The language-model clients the plan builds really talk to the persona's server.

A small OpenAI-compatible server on 127.0.0.1 stands in for Ollama and for an Azure OpenAI
resource; the real livekit-plugins-openai client streams a reply from it.
"""

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents import llm as lk_llm  # noqa: E402

from agent_runner.pipeline import NO_KEY, build_session_plan  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from tests.doubles.openai_server import ChatCompletionsServerDouble  # noqa: E402

pytestmark = pytest.mark.agent

keys, vad, settings_for = shared.keys, shared.vad, shared.settings_for


async def ask(llm):
    chat = lk_llm.ChatContext.empty()
    chat.add_message(role="user", content="When do you open?")
    text = ""
    async with llm.chat(chat_ctx=chat) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                text += chunk.delta.content
    return text


async def test_ollama_persona_streams_from_its_base_url(keys, vad):
    async with ChatCompletionsServerDouble() as server:
        persona = settings_for(
            llm_provider="openai_compatible",
            llm_model="llama3.1",
            llm_base_url=server.base_url,
            llm_temperature=0.4,
        )
        llm = build_session_plan(persona, vad=vad).session_kwargs["llm"]
        assert await ask(llm) == "Open until six."
        await llm.aclose()

    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {NO_KEY}"
    assert request["json"]["model"] == "llama3.1"
    assert request["json"]["temperature"] == 0.4
    assert request["json"]["messages"][-1]["content"] == "When do you open?"


async def test_azure_persona_calls_its_deployment_with_the_api_version(keys, vad):
    async with ChatCompletionsServerDouble(["Guten ", "Tag!"]) as server:
        persona = settings_for(
            llm_provider="azure_openai",
            llm_model="gpt-4o",
            azure_endpoint=server.url,
            azure_deployment="linden-gpt4o",
            azure_api_version="2024-10-21",
        )
        llm = build_session_plan(persona, vad=vad).session_kwargs["llm"]
        assert await ask(llm) == "Guten Tag!"
        await llm.aclose()

    [request] = server.requests
    assert request["path"] == "/openai/deployments/linden-gpt4o/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["headers"]["api-key"] == keys["AZURE_OPENAI_API_KEY"]
