"""Turns a persona's enabled registry entries into LiveKit function tools.

The registry (``voice_widget.tools``) lives on the web side and knows nothing about
LiveKit; here each entry becomes a raw-schema ``function_tool`` whose JSON schema is
exactly what the host registered. A conversation gets only its persona's tools.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from livekit.agents import RunContext
from livekit.agents.llm import RawFunctionTool, StopResponse, ToolError, function_tool

from voice_widget.tools import END_CONVERSATION, Tool, registry

logger = logging.getLogger(__name__)

END_CONVERSATION_HINT = " Say a short goodbye first; the call ends right after this tool."


def build_function_tools(
    names: Iterable[str],
    *,
    conversation: Any,
    request_end: Callable[[str], None],
) -> list[RawFunctionTool]:
    """LiveKit tools for the registered tools named in ``names`` (unknown names skipped)."""
    tools: list[RawFunctionTool] = []
    for name in dict.fromkeys(names or []):
        tool = registry.get(name)
        if tool is None:
            logger.warning(
                "conversation %s: tool %r is not registered in this worker; skipped",
                getattr(conversation, "pk", None),
                name,
            )
            continue
        if name == END_CONVERSATION:
            tools.append(_end_conversation_tool(tool, request_end))
        elif tool.function is not None:
            tools.append(_host_tool(tool, conversation))
    return tools


def _raw_schema(tool: Tool, description: str | None = None) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": description or tool.description,
        "parameters": tool.parameters,
    }


def _end_conversation_tool(tool: Tool, request_end: Callable[[str], None]) -> RawFunctionTool:
    async def end_conversation(raw_arguments: dict[str, Any], context: RunContext) -> None:
        # Let the goodbye spoken before the call finish, then end without another reply.
        await context.wait_for_playout()
        request_end("agent_end")
        raise StopResponse()

    return function_tool(
        end_conversation, raw_schema=_raw_schema(tool, tool.description + END_CONVERSATION_HINT)
    )


def _accepts_conversation(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return "conversation" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _host_tool(tool: Tool, conversation: Any) -> RawFunctionTool:
    function = tool.function
    assert function is not None
    pass_conversation = _accepts_conversation(function)
    is_async = inspect.iscoroutinefunction(function)
    # Sync host code may use the ORM: run it in a thread, as Django requires.
    call = function if is_async else sync_to_async(function, thread_sensitive=True)

    async def host_tool(raw_arguments: dict[str, Any]) -> str:
        kwargs = dict(raw_arguments or {})
        kwargs.pop("conversation", None)  # never let the model pass it
        if pass_conversation:
            kwargs["conversation"] = conversation
        try:
            result = await call(**kwargs)
        except ToolError:
            raise
        except TypeError as exc:
            logger.warning(
                "conversation %s: tool %s called with bad arguments",
                getattr(conversation, "pk", None),
                tool.name,
            )
            raise ToolError(f"Invalid arguments for {tool.name}.") from exc
        except Exception as exc:
            logger.exception(
                "conversation %s: tool %s failed", getattr(conversation, "pk", None), tool.name
            )
            raise ToolError(
                f"{tool.name} failed; tell the visitor you cannot check that now."
            ) from exc
        if isinstance(result, str):
            return result
        return json.dumps(result, ensure_ascii=False, default=str)

    host_tool.__name__ = tool.name
    return function_tool(host_tool, raw_schema=_raw_schema(tool))
