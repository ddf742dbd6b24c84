"""The LiveKit ``Agent`` of one conversation."""

from __future__ import annotations

from livekit.agents import Agent, llm


class VoiceWidgetAgent(Agent):
    """The persona's instructions and tools. It says nothing on entering the room.

    The greeting is not in ``on_enter`` on purpose: with click-to-talk the agent joins,
    waits muted, and greets only when the visitor clicks start (see ``ConversationRunner``).
    """

    def __init__(self, *, instructions: str, tools: list[llm.Tool] | None = None) -> None:
        super().__init__(instructions=instructions, tools=list(tools or []))
