"""The worker's heartbeat: written while registered with LiveKit, read by the health
endpoint, and marked stopped on a clean shutdown."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from livekit import api

from agent_runner.heartbeat import Heartbeat
from tests.doubles.livekit_server import LiveKitServerDouble
from voice_widget.models import WorkerHeartbeat

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

API_KEY = "APIheartbeat"
API_SECRET = "heartbeat-secret-that-is-long-enough-0123456789"


@sync_to_async
def health(client) -> dict:
    return client.get(reverse("voice_widget:health")).json()


async def test_heartbeat_row_is_written_with_active_jobs_and_marked_stopped():
    jobs = [1, 2]
    heartbeat = Heartbeat(agent_name="shop-agent", active_jobs=lambda: len(jobs), interval=0.05)
    heartbeat.start()
    await asyncio.sleep(0.2)

    row = await WorkerHeartbeat.objects.aget(worker_id=heartbeat.worker_id)
    assert (row.agent_name, row.pid, row.active_jobs, row.stopped_at) == (
        "shop-agent",
        heartbeat.pid,
        2,
        None,
    )
    first_seen = row.last_seen
    jobs.pop()
    await asyncio.sleep(0.15)
    row = await WorkerHeartbeat.objects.aget(worker_id=heartbeat.worker_id)
    assert row.last_seen > first_seen and row.active_jobs == 1

    await heartbeat.stop()
    row = await WorkerHeartbeat.objects.aget(worker_id=heartbeat.worker_id)
    assert row.stopped_at is not None and row.active_jobs == 0
    alive = WorkerHeartbeat.objects.alive("shop-agent", within=timedelta(seconds=20))
    assert await alive.acount() == 0


async def test_heartbeat_pauses_while_disconnected_from_livekit():
    connected = False
    heartbeat = Heartbeat(agent_name="shop-agent", connected=lambda: connected, interval=0.05)
    heartbeat.start()
    await asyncio.sleep(0.15)
    assert not await WorkerHeartbeat.objects.filter(worker_id=heartbeat.worker_id).aexists()
    connected = True
    await asyncio.sleep(0.15)
    assert await WorkerHeartbeat.objects.filter(worker_id=heartbeat.worker_id).aexists()
    await heartbeat.stop()


async def test_registered_worker_beats_and_health_counts_it_until_it_stops(settings, client):
    from livekit.agents.inference_runner import _InferenceRunner

    from agent_runner.worker import build_server

    async with LiveKitServerDouble() as livekit:
        settings.VOICE_WIDGET = {
            "LIVEKIT_URL": livekit.url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "AGENT_NAME": "shop-agent",
        }
        server = build_server(agent_name="shop-agent", num_idle_processes=0, port=0)
        # No inference process to start, so no model files to download: the turn detector
        # runs inside each job from the weights livekit-agents ships.
        assert _InferenceRunner.registered_runners == {}
        running = asyncio.create_task(server.run(devmode=True))
        try:
            await asyncio.wait_for(livekit.registered.wait(), 10)
            for _ in range(50):
                if await WorkerHeartbeat.objects.filter(agent_name="shop-agent").aexists():
                    break
                await asyncio.sleep(0.05)
            assert (await health(client))["agents_available"] == 1
        finally:
            await server.aclose()
            await asyncio.wait_for(running, 10)

    (registration,) = livekit.registrations
    assert registration["agent_name"] == "shop-agent"
    token = registration["authorization"].removeprefix("Bearer ")
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(token)
    assert claims.video.agent is True
    row = await WorkerHeartbeat.objects.aget(agent_name="shop-agent")
    assert row.stopped_at is not None
    assert (await health(client))["agents_available"] == 0
