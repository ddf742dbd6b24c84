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

from voice_widget.models import EndReason
from voice_widget.tools import (
    END_CONVERSATION,
    Tool,
    page_tool_problems,
    page_tool_schema,
    registry,
)

logger = logging.getLogger(__name__)

#: The one RPC method the widget answers for every page tool: ``{"name", "arguments"}`` in,
#: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error", "detail"}`` out.
RPC_PAGE_TOOL = "voice_widget.page_tool"
#: How long the agent waits for the page's answer (seconds). The widget stops waiting for
#: the page's handler a little earlier, so the model hears why rather than a bare timeout.
PAGE_TOOL_TIMEOUT = 10.0
#: How long the widget gives the page's handler, sent along with each call.
PAGE_TOOL_HANDLER_TIMEOUT = PAGE_TOOL_TIMEOUT - 1.5

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
        request_end(EndReason.AGENT_END)
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


def build_page_tools(
    declarations: Any,
    *,
    local_participant: Any,
    visitor_identity: str,
    conversation: Any,
    taken: Iterable[str] = (),
) -> list[RawFunctionTool]:
    """LiveKit tools that call the page's tools through RPC to the visitor's widget.

    ``declarations`` is the persona's ``page_tools``; an invalid list (possible only in an
    old snapshot) gives no page tools rather than a broken conversation.
    """
    if not declarations:
        return []
    problems = page_tool_problems(declarations)
    if problems:
        logger.warning(
            "conversation %s: page tools skipped, the persona's declarations are invalid",
            getattr(conversation, "pk", None),
        )
        return []
    taken = set(taken)
    tools = []
    for entry in declarations:
        if entry["name"] in taken:
            continue
        tools.append(
            _page_tool(page_tool_schema(entry), local_participant, visitor_identity, conversation)
        )
    return tools


def _page_tool(
    schema: dict[str, Any], local_participant: Any, visitor_identity: str, conversation: Any
) -> RawFunctionTool:
    name = schema["name"]
    unavailable = f"The page did not answer {name}; tell the visitor you cannot do that now."

    async def page_tool(raw_arguments: dict[str, Any]) -> str:
        payload = json.dumps(
            {
                "name": name,
                "arguments": raw_arguments or {},
                "timeout_ms": int(PAGE_TOOL_HANDLER_TIMEOUT * 1000),
            },
            ensure_ascii=False,
        )
        try:
            answer = await local_participant.perform_rpc(
                destination_identity=visitor_identity,
                method=RPC_PAGE_TOOL,
                payload=payload,
                response_timeout=PAGE_TOOL_TIMEOUT,
            )
        except Exception as exc:  # RpcError: timeout, visitor gone, an older widget
            logger.warning(
                "conversation %s: page tool %s not answered (%s)",
                getattr(conversation, "pk", None),
                name,
                getattr(exc, "code", type(exc).__name__),
            )
            raise ToolError(unavailable) from exc
        try:
            data = json.loads(answer)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ToolError(unavailable)
        if data.get("ok"):
            result = data.get("result")
            if result is None:
                return "Done."
            if isinstance(result, str):
                return result
            return json.dumps(result, ensure_ascii=False)
        logger.info(
            "conversation %s: page tool %s answered %s",
            getattr(conversation, "pk", None),
            name,
            str(data.get("error"))[:40],
        )
        # The widget's detail is written for the model ("this page has no tool X", ...).
        detail = str(data.get("detail") or "")[:500] or unavailable
        raise ToolError(detail)

    page_tool.__name__ = name
    return function_tool(page_tool, raw_schema=schema)
