"""``DoubleLLM``: a scripted ``llm.LLM`` that streams its replies like a provider would."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import APIStatusError, llm
from livekit.agents.llm import ChatChunk, ChoiceDelta, CompletionUsage, FunctionToolCall
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions


@dataclass
class ToolCall:
    """A reply that calls one tool instead of speaking."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    """What the model was asked: the chat context and the names of the offered tools."""

    chat_ctx: llm.ChatContext
    tool_names: list[str]

    @property
    def instructions(self) -> str:
        return "\n".join(
            item.text_content or ""
            for item in self.chat_ctx.items
            if getattr(item, "role", None) in ("system", "developer")
        )


@dataclass
class Failure:
    """A reply the provider refuses, like an HTTP 400: not retryable."""

    message: str = "the provider refused the request"


Reply = str | ToolCall | Failure | Callable[[Request], "str | ToolCall | Failure"]


class DoubleLLM(llm.LLM):
    """Answers with the scripted ``replies`` in order (then ``fallback``); counts tokens."""

    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        fallback: str = "Okay.",
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
    ) -> None:
        super().__init__()
        self.replies = list(replies or [])
        self.fallback = fallback
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.requests: list[Request] = []

    @property
    def model(self) -> str:
        return "double-llm"

    @property
    def provider(self) -> str:
        return "tests"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **kwargs: Any,
    ) -> llm.LLMStream:
        request = Request(
            chat_ctx=chat_ctx.copy(),
            tool_names=sorted(getattr(tool, "id", "") for tool in tools or []),
        )
        self.requests.append(request)
        reply: Any = self.replies.pop(0) if self.replies else self.fallback
        if callable(reply):
            reply = reply(request)
        return _DoubleStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options, reply=reply
        )


class _DoubleStream(llm.LLMStream):
    def __init__(self, llm_: DoubleLLM, *, reply: str | ToolCall | Failure, **kwargs: Any) -> None:
        super().__init__(llm_, **kwargs)
        self._double = llm_
        self._reply = reply

    async def _run(self) -> None:
        if isinstance(self._reply, Failure):
            raise APIStatusError(self._reply.message, status_code=400, retryable=False)
        if isinstance(self._reply, ToolCall):
            call = FunctionToolCall(
                name=self._reply.name,
                arguments=json.dumps(self._reply.arguments),
                call_id=f"call_{len(self._double.requests)}",
            )
            self._event_ch.send_nowait(
                ChatChunk(id="double", delta=ChoiceDelta(role="assistant", tool_calls=[call]))
            )
        else:
            words = self._reply.split(" ")
            for index, word in enumerate(words):
                text = word if index == len(words) - 1 else word + " "
                self._event_ch.send_nowait(
                    ChatChunk(id="double", delta=ChoiceDelta(role="assistant", content=text))
                )
        self._event_ch.send_nowait(
            ChatChunk(
                id="double",
                usage=CompletionUsage(
                    prompt_tokens=self._double.prompt_tokens,
                    completion_tokens=self._double.completion_tokens,
                    total_tokens=self._double.prompt_tokens + self._double.completion_tokens,
                ),
            )
        )
