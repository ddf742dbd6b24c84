"""Helpers for the worker's tests: a real ``AgentSession`` built from a ``SessionPlan`` of
test doubles, driven in text mode by ``ConversationRunner``."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from livekit.agents import AgentSession

from agent_runner.conversation import ConversationRunner
from agent_runner.pipeline import SessionPlan
from agent_runner.protocol import RoomSignals
from tests.doubles.audio import DoubleTTS, InstantAudioOutput
from tests.doubles.room import DoubleRoom
from tests.factories import make_conversation, make_persona
from voice_widget.models import Conversation, Turn


def double_plan(llm: Any, *, tts: Any | None = None, **session_options: Any) -> SessionPlan:
    """A session plan of doubles: no VAD, no STT, no turn-detector model."""
    kwargs: dict[str, Any] = {"llm": llm, "vad": None, "turn_handling": {"turn_detection": None}}
    kwargs.update(session_options)
    if tts is not None:
        kwargs["tts"] = tts
    return SessionPlan(session_kwargs=kwargs, noise_cancellation=None, avatar=None)


@sync_to_async
def new_conversation(snapshot_overrides: dict[str, Any] | None = None, **persona_fields: Any):
    """A conversation whose persona snapshot may carry limits admin would refuse (tests only)."""
    persona = make_persona(**persona_fields)
    snapshot = persona.snapshot()
    snapshot.update(snapshot_overrides or {})
    return make_conversation(persona, persona_snapshot=snapshot)


def build_runner(
    conversation: Conversation,
    llm: Any,
    *,
    room: DoubleRoom | None = None,
    tts: DoubleTTS | None = None,
    start_immediately: bool | None = None,
    can_say: bool = True,
    **session_options: Any,
) -> tuple[ConversationRunner, DoubleRoom]:
    room = room or DoubleRoom(visitor=conversation.identity)
    plan = double_plan(llm, tts=tts, **session_options)
    session = AgentSession(**plan.session_kwargs)
    if tts is not None:
        session.output.audio = InstantAudioOutput()
    runner = ConversationRunner(
        conversation=conversation,
        session=session,
        signals=RoomSignals(room),
        room=room,
        start_immediately=start_immediately,
        can_say=can_say,
    )
    return runner, room


async def settle(session: AgentSession, timeout: float = 5.0) -> None:
    """Wait until the agent has said (and 'played') everything it queued."""
    await asyncio.wait_for(session.wait_for_idle(), timeout)


@sync_to_async
def transcript(conversation: Conversation) -> list[tuple[int, str, str]]:
    return [
        (turn.sequence, turn.role, turn.text)
        for turn in Turn.objects.filter(conversation=conversation).order_by("sequence")
    ]


@sync_to_async
def reload(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)
