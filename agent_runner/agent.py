"""The LiveKit ``Agent`` of one conversation."""

from __future__ import annotations

from livekit.agents import Agent, llm


class VoiceWidgetAgent(Agent):
    """The persona's instructions and tools. It says nothing on entering the room.

    The greeting is not in ``on_enter`` on purpose: the agent greets when the conversation
    starts, which after a live preview is the visitor's ``voice_widget.start`` and otherwise
    as soon as the session runs (see ``ConversationRunner``).
    """

    def __init__(self, *, instructions: str, tools: list[llm.Tool] | None = None) -> None:
        super().__init__(instructions=instructions, tools=list(tools or []))
