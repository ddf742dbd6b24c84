"""A real ``livekit.agents.AgentServer`` registers with the server double; the visitor whose
token names agent "x" creates the room and the agent joins it; a second token dispatch into
the existing room dispatches nobody."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from livekit import api, rtc

from tests.e2e.agent_job import entrypoint
from tests.e2e.conftest import API_KEY, API_SECRET, connected, token

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_inference_runners():
    """A bare AgentServer needs no inference process (other tests may register runners)."""
    from livekit.agents.inference_runner import _InferenceRunner

    saved = dict(_InferenceRunner.registered_runners)
    _InferenceRunner.registered_runners.clear()
    yield
    _InferenceRunner.registered_runners.update(saved)


@contextlib.asynccontextmanager
async def agent_server(url: str):
    from livekit.agents import AgentServer, JobExecutorType

    server = AgentServer(
        ws_url=url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        job_executor_type=JobExecutorType.THREAD,
        num_idle_processes=0,
        port=0,
        shutdown_process_timeout=5,
    )
    server.rtc_session(entrypoint, agent_name="x")
    running = asyncio.create_task(server.run(devmode=True))
    try:
        yield server
    finally:
        await asyncio.wait_for(server.aclose(), 15)
        await asyncio.wait_for(running, 10)


async def agent_in_room(room: rtc.Room, timeout: float = 15.0) -> rtc.RemoteParticipant:
    async def wait() -> rtc.RemoteParticipant:
        while True:
            for participant in room.remote_participants.values():
                if participant.attributes.get("e2e.connected") == "yes":
                    return participant
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(wait(), timeout)


async def test_a_token_dispatch_brings_the_agent_into_the_room_it_creates(
    livekit, no_inference_runners
):
    async with agent_server(livekit.url):
        await asyncio.wait_for(livekit.registered.wait(), 10)
        (registration,) = livekit.registrations
        assert registration["agent_name"] == "x"
        claims = api.TokenVerifier(API_KEY, API_SECRET).verify(
            registration["authorization"].removeprefix("Bearer ")
        )
        assert claims.video.agent is True

        visitor_token = token("visitor", "agent-room", agents=[("x", '{"conversation": 7}')])
        async with connected(livekit.url, visitor_token) as visitor:
            (dispatch,) = await livekit.dispatched("agent-room", timeout=10)
            assert (dispatch.agent_name, dispatch.metadata) == ("x", '{"conversation": 7}')
            assert dispatch.accepted is True and dispatch.source == "token"

            agent = await agent_in_room(visitor)
            assert agent.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            assert agent.identity == dispatch.participant_identity
            assert agent.attributes["e2e.metadata"] == '{"conversation": 7}'
            assert agent.attributes.get("lk.agent.name") == "x"
            await livekit.wait_for(
                lambda: any(
                    u["job_id"] == dispatch.job_id and u["status"] == "JS_RUNNING"
                    for u in livekit.job_updates
                ),
                10,
            )

            # the room exists now: a second token dispatch is ignored, as LiveKit does
            second_token = token("second", "agent-room", agents=[("x", "again")])
            async with connected(livekit.url, second_token) as second:
                assert agent.identity in second.remote_participants
                await asyncio.sleep(1.0)
                assert len(livekit.dispatches) == 1

        # both visitors left: the job ends itself and reports it
        await livekit.wait_for(
            lambda: any(
                u["job_id"] == dispatch.job_id and u["status"] == "JS_SUCCESS"
                for u in livekit.job_updates
            ),
            15,
        )
        await livekit.wait_for(lambda: "agent-room" not in livekit.rooms, 10)
