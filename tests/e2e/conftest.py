"""Shared pieces of the end-to-end tests: the LiveKit server double, tokens, a sine-wave
publisher and a loudness probe. Media tests skip (with the reason) outside the private
network namespace that ``scripts/netns-run.sh`` sets up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np
import pytest
from livekit import api, rtc

from tests.doubles.livekit_server import LiveKitServerDouble
from tests.e2e.netns import netns_problem

API_KEY = "e2e-key"
API_SECRET = "e2e-secret-e2e-secret-e2e-secret-e2e-secret"
SAMPLE_RATE = 48000


@pytest.fixture
def netns() -> None:
    problem = netns_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture
async def livekit(netns: None) -> AsyncIterator[LiveKitServerDouble]:
    async with LiveKitServerDouble(api_key=API_KEY, api_secret=API_SECRET) as server:
        yield server


def token(
    identity: str,
    room: str,
    *,
    agents: list[tuple[str, str]] | None = None,
    kind: str = "",
) -> str:
    grant = api.VideoGrants(room_join=True, room=room, can_update_own_metadata=True)
    access = api.AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(grant)
    if kind:
        access = access.with_kind(kind)  # type: ignore[arg-type]
    if agents:
        access = access.with_room_config(
            api.RoomConfiguration(
                agents=[api.RoomAgentDispatch(agent_name=n, metadata=m) for n, m in agents]
            )
        )
    return access.to_jwt()


@contextlib.asynccontextmanager
async def connected(url: str, jwt: str) -> AsyncIterator[rtc.Room]:
    room = rtc.Room()
    await asyncio.wait_for(room.connect(url, jwt), 15)
    try:
        yield room
    finally:
        await asyncio.wait_for(room.disconnect(), 10)


@contextlib.asynccontextmanager
async def sine_publisher(room: rtc.Room, frequency: float = 440.0) -> AsyncIterator[rtc.Track]:
    """Publishes a microphone track playing a sine wave until the block ends."""
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("sine", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await asyncio.wait_for(room.local_participant.publish_track(track, options), 10)

    async def feed() -> None:
        samples_per_frame = SAMPLE_RATE // 100
        position = 0
        while True:
            t = np.arange(position, position + samples_per_frame) / SAMPLE_RATE
            wave = (np.sin(2 * np.pi * frequency * t) * 12000).astype(np.int16)
            position += samples_per_frame
            frame = rtc.AudioFrame(wave.tobytes(), SAMPLE_RATE, 1, samples_per_frame)
            await source.capture_frame(frame)

    feeding = asyncio.create_task(feed())
    try:
        yield track
    finally:
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        await source.aclose()


async def loudest_sample(track: rtc.Track, frames: int = 150, timeout: float = 15.0) -> int:
    """Reads ``frames`` audio frames from a remote track; returns the largest |sample|."""
    stream = rtc.AudioStream(track)
    peak = 0

    async def read() -> None:
        nonlocal peak
        count = 0
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            if samples.size:
                peak = max(peak, int(np.abs(samples.astype(np.int32)).max()))
            count += 1
            if count >= frames:
                return

    try:
        await asyncio.wait_for(read(), timeout)
    finally:
        await stream.aclose()
    return peak


async def subscribed_track(room: rtc.Room, identity: str, timeout: float = 15.0) -> rtc.Track:
    """The first audio track of ``identity`` that ``room`` subscribes to."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[rtc.Track] = loop.create_future()

    def check(track: rtc.Track, publication: object, participant: rtc.RemoteParticipant) -> None:
        audio = track.kind == rtc.TrackKind.KIND_AUDIO
        if participant.identity == identity and audio and not arrived.done():
            arrived.set_result(track)

    room.on("track_subscribed", check)
    try:
        remote = room.remote_participants.get(identity)
        for publication in remote.track_publications.values() if remote else []:
            if publication.track is not None and publication.kind == rtc.TrackKind.KIND_AUDIO:
                return publication.track
        return await asyncio.wait_for(arrived, timeout)
    finally:
        room.off("track_subscribed", check)
