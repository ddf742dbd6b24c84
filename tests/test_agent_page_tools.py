"""Page tools on the worker: the model's tool call becomes an RPC to the visitor's widget, and
the page's answer (or a clear error) is what the model reads next. The real AgentSession and
the real openai client against the chat-completions double; the room is a double here (the
browser test in tests/e2e/test_page_tools.py runs the real widget)."""

from __future__ import annotations

import json

import pytest
from livekit import rtc
from livekit.plugins import openai

from agent_runner.function_tools import (
    PAGE_TOOL_HANDLER_TIMEOUT,
    PAGE_TOOL_TIMEOUT,
    RPC_PAGE_TOOL,
)
from tests.agent_support import build_runner, new_conversation
from tests.doubles.llm import DoubleLLM, ToolCall
from tests.doubles.openai_server import ChatCompletionsServerDouble

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

SHOW_PRODUCT = {
    "name": "show_product",
    "description": "Show a product's page to the visitor.",
    "parameters": {
        "type": "object",
        "properties": {"product": {"type": "string", "description": "The product's name."}},
        "required": ["product"],
    },
}


def tool_outputs(request_json: dict) -> list[str]:
    return [m["content"] for m in request_json["messages"] if m["role"] == "tool"]


async def test_a_tool_call_of_the_model_runs_on_the_page_and_its_result_reaches_the_model():
    async with ChatCompletionsServerDouble(
        ["Here is the cargo bike."],
        replies=[{"tool": "show_product", "arguments": {"product": "cargo bike"}}],
    ) as server:
        conversation = await new_conversation(
            {"llm_provider": "openai_compatible", "llm_base_url": server.base_url},
            page_tools=[SHOW_PRODUCT],
        )
        llm = openai.LLM(model="local-model", base_url=server.base_url, api_key="test")
        runner, room = build_runner(conversation, llm, start_immediately=True)
        room.local_participant.rpc_answers[RPC_PAGE_TOOL] = lambda payload: json.dumps(
            {"ok": True, "result": {"shown": payload["arguments"]["product"]}}
        )
        await runner.start()
        await runner.session.run(user_input="Show me the cargo bike")
        await runner.request_end("client_end")

    offered = server.requests[0]["json"]["tools"]
    assert [tool["function"]["name"] for tool in offered] == ["show_product"]
    assert (
        offered[0]["function"]["parameters"]["properties"]
        == SHOW_PRODUCT["parameters"]["properties"]
    )
    calls = [c for c in room.local_participant.rpc_calls if c["method"] == RPC_PAGE_TOOL]
    assert calls == [
        {
            "destination": conversation.identity,
            "method": RPC_PAGE_TOOL,
            "payload": {
                "name": "show_product",
                "arguments": {"product": "cargo bike"},
                "timeout_ms": int(PAGE_TOOL_HANDLER_TIMEOUT * 1000),
            },
            "response_timeout": PAGE_TOOL_TIMEOUT,
        }
    ]
    assert tool_outputs(server.requests[1]["json"]) == ['{"shown": "cargo bike"}']


async def run_page_tool(answer) -> str:
    """One page-tool call whose RPC answers ``answer``; what the model read back."""
    conversation = await new_conversation(page_tools=[SHOW_PRODUCT])
    llm = DoubleLLM([ToolCall("show_product", {"product": "cargo bike"}), "Sorry."])
    runner, room = build_runner(conversation, llm, start_immediately=True)
    room.local_participant.rpc_answers[RPC_PAGE_TOOL] = answer
    await runner.start()
    await runner.session.run(user_input="Show me the cargo bike")
    await runner.request_end("client_end")
    [output] = [
        item for item in llm.requests[1].chat_ctx.items if item.type == "function_call_output"
    ]
    assert output.is_error
    return output.output


async def test_a_page_without_the_tool_tells_the_model_so():
    detail = "This page has no tool show_product."
    answer = json.dumps({"ok": False, "error": "unknown_tool", "detail": detail})
    assert await run_page_tool(answer) == detail


async def test_a_page_that_does_not_answer_gives_the_model_a_clear_error():
    timeout = rtc.RpcError(rtc.RpcError.ErrorCode.RESPONSE_TIMEOUT, "Response timeout")
    assert await run_page_tool(timeout) == (
        "The page did not answer show_product; tell the visitor you cannot do that now."
    )


async def test_a_garbled_answer_is_an_error_the_model_can_read():
    assert (await run_page_tool("not json")).startswith("The page did not answer show_product")


async def test_page_tools_are_only_the_personas_and_never_shadow_registered_tools():
    conversation = await new_conversation(enabled_tools=["end_conversation"])
    llm = DoubleLLM(["Hello."])
    runner, _ = build_runner(conversation, llm, start_immediately=True)
    await runner.start()
    await runner.session.run(user_input="Hi")
    assert llm.requests[0].tool_names == ["end_conversation"]
    await runner.request_end("client_end")

    # An old snapshot holding a name a code tool now has: the code tool wins.
    clash = {**SHOW_PRODUCT, "name": "end_conversation"}
    conversation = await new_conversation(
        {"page_tools": [clash, SHOW_PRODUCT]}, enabled_tools=["end_conversation"]
    )
    llm = DoubleLLM(["Hello."])
    runner, _ = build_runner(conversation, llm, start_immediately=True)
    await runner.start()
    await runner.session.run(user_input="Hi")
    assert llm.requests[0].tool_names == ["end_conversation"]  # invalid list: none offered
    await runner.request_end("client_end")
