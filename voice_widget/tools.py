"""The registry of host tools a persona may let its agent call.

It lives on the web side and imports nothing from LiveKit: the persona admin
offers the registered tools as choices, and web processes never install
``livekit-agents``. ``agent_runner`` turns a persona's enabled entries into
LiveKit function tools.

Host projects register tools in their own code, e.g. in ``AppConfig.ready()``
or a module it imports::

    from voice_widget.tools import register_tool

    @register_tool(
        description="Opening hours of the shop for a given weekday.",
        parameters={
            "type": "object",
            "properties": {"weekday": {"type": "string"}},
            "required": ["weekday"],
        },
    )
    async def opening_hours(weekday: str) -> str:
        ...

A tool function receives the model's arguments as keyword arguments and may
take ``conversation`` (the ``Conversation``) as a keyword too. It may be sync
(run in a thread, so the ORM works) or async, and returns text or JSON-able data.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")

#: Built into the worker: the model ends the call when the conversation is naturally over.
END_CONVERSATION = "end_conversation"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    function: Callable[..., Any] | None = None
    #: Built-in tools are implemented by the worker itself (``function`` is None).
    builtin: bool = False

    @property
    def label(self) -> str:
        return f"{self.name}: {self.description}"


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if not _NAME_RE.match(tool.name):
            raise ValueError(
                f"Tool name {tool.name!r} must be letters, digits and underscores (max 64)."
            )
        if tool.parameters.get("type") != "object":
            raise ValueError(f"Tool {tool.name!r}: parameters must be a JSON schema object.")
        existing = self._tools.get(tool.name)
        if existing is not None and existing.function is not tool.function:
            raise ValueError(f"A different tool named {tool.name!r} is already registered.")
        self._tools[tool.name] = tool
        return tool

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def all(self) -> list[Tool]:
        return sorted(self._tools.values(), key=lambda tool: (not tool.builtin, tool.name))

    def choices(self) -> list[tuple[str, str]]:
        return [(tool.name, tool.label) for tool in self.all()]


registry = ToolRegistry()

registry.register(
    Tool(
        name=END_CONVERSATION,
        description="End the call when the conversation is naturally over (the visitor said "
        "goodbye or has nothing more to ask).",
        builtin=True,
    )
)


def register_tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> Any:
    """Decorator registering a host tool; the description defaults to the docstring."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        registry.register(
            Tool(
                name=name or fn.__name__,
                description=description or inspect.getdoc(fn) or fn.__name__,
                parameters=parameters or {"type": "object", "properties": {}},
                function=fn,
            )
        )
        return fn

    if func is not None:
        return decorate(func)
    return decorate


#: Most page tools one persona may declare (each is sent to the model with every request).
MAX_PAGE_TOOLS = 20


def page_tool_problems(value: Any) -> list[str]:
    """What is wrong with a persona's page tool declarations, in the editor's words.

    Page tools run in the visitor's browser (``widget.registerTool`` on the host page); the
    persona declares each one the agent may call: ``{"name", "description", "parameters"}``,
    ``parameters`` being a JSON schema object (optional: no arguments).
    """
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        return ['Page tools must be a list like [{"name": "...", "description": "..."}].']
    problems: list[str] = []
    if len(value) > MAX_PAGE_TOOLS:
        problems.append(f"At most {MAX_PAGE_TOOLS} page tools.")
    seen: set[str] = set()
    for index, entry in enumerate(value, start=1):
        if not isinstance(entry, dict):
            problems.append(f"Page tool {index} must be an object with a name and a description.")
            continue
        name = entry.get("name")
        label = f"Page tool {name!r}" if isinstance(name, str) and name else f"Page tool {index}"
        unknown_keys = sorted(set(entry) - {"name", "description", "parameters"})
        if unknown_keys:
            problems.append(f"{label}: unknown keys {', '.join(unknown_keys)}.")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            problems.append(
                f"{label}: the name must be letters, digits and underscores (max 64), "
                "starting with a letter, exactly as the page registers it."
            )
        elif name in seen:
            problems.append(f"{label} is declared twice.")
        elif name in registry:
            problems.append(f"{label}: a tool registered in code has this name; pick another.")
        else:
            seen.add(name)
        description = entry.get("description")
        if not isinstance(description, str) or not description.strip():
            problems.append(f"{label}: describe when the agent should use it.")
        parameters = entry.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            problems.append(
                f'{label}: parameters must be a JSON schema object ({{"type": "object", ...}}).'
            )
        elif not isinstance(parameters.get("properties", {}), dict):
            problems.append(f"{label}: parameters' properties must be an object.")
    return problems


def page_tool_schema(entry: dict[str, Any]) -> dict[str, Any]:
    """A validated declaration as the raw function schema the model sees."""
    return {
        "name": entry["name"],
        "description": entry["description"].strip(),
        "parameters": entry.get("parameters") or {"type": "object", "properties": {}},
    }
