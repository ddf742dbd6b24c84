"""The real livekit-plugins-openai LLM client, over HTTP, against a small OpenAI-compatible
chat-completions server on 127.0.0.1: its streamed reply becomes the agent's turn."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from livekit.plugins import openai

from tests.agent_support import build_runner, new_conversation, reload, settle, transcript

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

REPLY_PARTS = ["We are ", "open until ", "half past six."]


class ChatCompletionsServer:
    """Streams a fixed reply as server-sent events, the way OpenAI-compatible servers do."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> ChatCompletionsServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "authorization": request.headers.get("Authorization")})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {data}\n\n".encode())

        base = {"id": "chatcmpl-local", "object": "chat.completion.chunk", "created": 1}
        base["model"] = body["model"]
        for index, part in enumerate(REPLY_PARTS):
            delta = {"content": part} if index else {"role": "assistant", "content": part}
            await send({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        await send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
        await send({**base, "choices": [], "usage": usage})
        await send("[DONE]")
        await response.write_eof()
        return response


async def test_streamed_reply_of_the_real_openai_client_is_saved_as_the_agents_turn():
    async with ChatCompletionsServer() as server:
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
    assert request["authorization"] == "Bearer test"
    assert request["body"]["model"] == "local-model" and request["body"]["stream"] is True
    messages = request["body"]["messages"]
    assert messages[0]["content"].startswith("You answer questions about the shop.")
    assert messages[-1] == {"role": "user", "content": "How long are you open today?"}

    assert await transcript(conversation) == [
        (1, "agent", "Hello! How can I help?"),
        (2, "user", "How long are you open today?"),
        (3, "agent", "We are open until half past six."),
    ]
    usage = (await reload(conversation)).usage
    assert usage["llm_input_tokens"] == 42 and usage["llm_output_tokens"] == 7
