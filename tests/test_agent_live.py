"""The agent's side of the live page: an editor's end request, as the server's data packet
reaches the room, ends a real ``AgentSession``'s conversation with ``staff_end`` after the
persona's closing line; packets a participant sends on the same topic are ignored."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from agent_runner import protocol
from tests.agent_support import build_runner, new_conversation, reload, settle, transcript
from tests.doubles.llm import DoubleLLM
from voice_widget import live
from voice_widget.lifecycle import end_conversation
from voice_widget.models import ConversationStatus, EndReason

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

GREETING = "Hello! How can I help?"
CLOSING = "An editor has closed this conversation. Goodbye!"


async def test_an_end_from_the_live_page_says_the_closing_line_and_tells_the_widget():
    conversation = await new_conversation(greeting=GREETING, closing_message=CLOSING)
    runner, room = build_runner(conversation, DoubleLLM(), start_immediately=True)
    await runner.start()
    await settle(runner.session)

    # What the web side does: record the ending, then send the packet through LiveKit.
    assert await sync_to_async(end_conversation)(conversation.pk, EndReason.STAFF_END)
    room.receive_data(live.end_control(conversation.pk), topic=live.CONTROL_TOPIC)

    assert await asyncio.wait_for(runner.wait_finished(), 10) == "staff_end"
    assert [line[1:] for line in await transcript(conversation)] == [
        ("agent", GREETING),
        ("agent", CLOSING),
    ]
    ended = await reload(conversation)
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "staff_end")
    assert room.local_participant.attributes[protocol.ATTR_END_REASON] == "staff_end"
    (told,) = [c for c in room.local_participant.rpc_calls if c["method"] == protocol.RPC_ENDED]
    assert told == {
        "destination": conversation.identity,
        "method": protocol.RPC_ENDED,
        "payload": {"reason": "staff_end"},
        "response_timeout": protocol.ENDED_RPC_TIMEOUT,
    }


async def test_the_agent_alone_records_staff_end_when_the_web_side_could_not():
    conversation = await new_conversation(greeting=GREETING, closing_message=CLOSING)
    runner, room = build_runner(conversation, DoubleLLM(), start_immediately=True)
    await runner.start()
    room.receive_data(live.end_control(conversation.pk), topic=live.CONTROL_TOPIC)
    assert await asyncio.wait_for(runner.wait_finished(), 10) == "staff_end"
    assert (await reload(conversation)).end_reason == "staff_end"
    assert (await transcript(conversation))[-1][1:] == ("agent", CLOSING)


async def test_control_packets_from_a_participant_or_for_another_conversation_are_ignored():
    conversation = await new_conversation(greeting=GREETING, closing_message=CLOSING)
    runner, room = build_runner(conversation, DoubleLLM(), start_immediately=True)
    await runner.start()

    # The visitor may publish data, so it could send this very packet: it is not the server.
    room.receive_data(
        live.end_control(conversation.pk), topic=live.CONTROL_TOPIC, sender=conversation.identity
    )
    other = await new_conversation()
    room.receive_data(live.end_control(other.pk), topic=live.CONTROL_TOPIC)
    room.receive_data(b"not json", topic=live.CONTROL_TOPIC)
    room.receive_data(live.end_control(conversation.pk), topic="another.topic")
    await asyncio.sleep(0.3)
    assert runner.end_reason is None
    assert (await reload(conversation)).is_open

    await runner.request_end("client_end")
    assert await runner.wait_finished() == "client_end"


async def test_before_the_visitor_started_nothing_is_said():
    conversation = await new_conversation(greeting=GREETING, closing_message=CLOSING)
    runner, room = build_runner(conversation, DoubleLLM())
    await runner.start()
    room.receive_data(live.end_control(conversation.pk), topic=live.CONTROL_TOPIC)
    assert await asyncio.wait_for(runner.wait_finished(), 10) == "staff_end"
    assert await transcript(conversation) == []
