"""Shared pieces of the end-to-end tests: the LiveKit server double, tokens, a sine-wave
publisher and a loudness probe. Media tests skip (with the reason) outside the private
network namespace that ``scripts/netns-run.sh`` sets up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from django.utils import timezone
from livekit import api, rtc

from tests.doubles.livekit_server import LiveKitServerDouble
from tests.e2e.conversation import API_KEY, API_SECRET
from tests.e2e.netns import netns_problem
from tests.playwright_support import chromium_path, sync_playwright_with_orm

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


# ---- the whole conversation: site, worker, doubles and Chromium (synchronous tests) ----------


@pytest.fixture(scope="session")
def media_machine() -> None:
    """Skip (saying why) where a real conversation cannot run: no namespace, no espeak-ng,
    no Chromium."""
    from tests.e2e.speech import has_espeak

    problem = netns_problem() or has_espeak()
    if problem is None and chromium_path() is None:
        problem = "Chromium not found (apt-get install chromium)"
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="module")
def livekit_server(media_machine: None) -> Iterator[LiveKitServerDouble]:
    from tests.e2e.threaded import serve_in_thread

    with serve_in_thread(LiveKitServerDouble(api_key=API_KEY, api_secret=API_SECRET)) as server:
        yield server


@pytest.fixture(scope="module")
def openai_server(media_machine: None) -> Iterator[Any]:
    from tests.doubles.openai_server import OpenAIServerDouble
    from tests.e2e.threaded import serve_in_thread

    with serve_in_thread(OpenAIServerDouble()) as server:
        yield server


@pytest.fixture(scope="module")
def worker(
    request: Any,
    livekit_server: LiveKitServerDouble,
    openai_server: Any,
    django_db_setup: None,
    django_db_blocker: Any,
) -> Iterator[Any]:
    """The real ``run_voice_agent start`` for the tests of one module."""
    from tests.e2e.conversation import ARTIFACTS, worker_environment
    from tests.e2e.worker_process import REGISTERED, WorkerProcess

    # A closed port: the avatar service is down (the live-preview persona goes voice-only).
    env = worker_environment(
        livekit_server.url,
        openai_server.base_url,
        BEY_API_KEY="bey-e2e-double",
        BEY_API_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"worker-{request.module.__name__.rsplit('.', 1)[-1]}.log"
    extra = getattr(request.module, "WORKER_ARGS", ())
    env.update(getattr(request.module, "WORKER_ENV", {}))
    # On a busy CI machine LiveKit's load threshold would mark the worker unavailable (every
    # dispatch refused), and LiveKit registers the worker after 12 s even if its first job
    # process is not warm yet: take every job, and start once a job process is warm.
    with WorkerProcess(
        env, log_path=log_path, extra_args=extra, load_threshold=float("inf")
    ) as process:
        process.wait_for_line(REGISTERED, timeout=120)
        process.wait_for_line("process initialized", timeout=120, from_start=True)
        yield process


@pytest.fixture(scope="module")
def playwright_sync(media_machine: None) -> Iterator[Any]:
    """Playwright's sync API, for the tests of one module."""
    with sync_playwright_with_orm() as playwright:
        yield playwright


@pytest.fixture
def shop(
    live_server: Any,
    settings: Any,
    transactional_db: None,
    livekit_server: LiveKitServerDouble,
    openai_server: Any,
    worker: Any,
) -> Any:
    """The example site (demo data and personas) pointed at the LiveKit double, with the
    worker's heartbeat in place; the OpenAI double's script reset."""
    import importlib

    from django.apps import apps
    from django.core.cache import cache
    from django.core.management import call_command

    from tests.e2e.conversation import AGENT_NAME, wait_for_worker_heartbeat
    from voice_widget.models import NoiseCancellation, Persona

    settings.DEBUG = False
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "LIVEKIT_URL": livekit_server.url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "AGENT_NAME": AGENT_NAME,
    }
    demo_data = importlib.import_module("example_site.shop.migrations.0002_demo_data")
    demo_data.add_demo_data(apps, None)  # live_server's database is flushed between tests
    call_command("seed_demo", verbosity=0)
    # Noise cancellation is LiveKit Cloud's; the double would refuse its authorization.
    Persona.objects.update(noise_cancellation=NoiseCancellation.OFF, updated_at=timezone.now())
    cache.clear()
    openai_server.script()
    wait_for_worker_heartbeat()
    return live_server


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
