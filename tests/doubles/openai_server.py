"""``ChatCompletionsServerDouble``: an OpenAI-compatible chat-completions server on 127.0.0.1.

It answers any ``…/chat/completions`` POST (OpenAI, Ollama-style ``/v1`` and Azure's
``/openai/deployments/<name>/chat/completions``) with a streamed reply as server-sent
events, then a usage chunk, the way OpenAI-compatible servers do, and records each request.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.doubles.local_server import LocalServer


class ChatCompletionsServerDouble(LocalServer):
    def __init__(
        self,
        reply_parts: list[str] | None = None,
        usage: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.reply_parts = reply_parts or ["Open ", "until six."]
        self.usage = usage or {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``…/v1``)."""
        return f"{self.url}/v1"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{tail:.*}/chat/completions", self.chat_completions)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": body,
            }
        )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {data}\n\n".encode())

        base = {"id": "chatcmpl-local", "object": "chat.completion.chunk", "created": 1}
        base["model"] = body["model"]
        for index, part in enumerate(self.reply_parts):
            delta = {"content": part} if index else {"role": "assistant", "content": part}
            await send({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        await send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        await send({**base, "choices": [], "usage": self.usage})
        await send("[DONE]")
        await response.write_eof()
        return response
