"""Voice latency of a real conversation: the widget on the example site, the real worker, the
LiveKit server double and the OpenAI-compatible STT/LLM/TTS double, heard in real Chromium.

One run: migrate a temporary SQLite database and seed the demo personas; start the example
site (Django's threaded live server on 127.0.0.1, as the e2e tests do), the LiveKit double,
the OpenAI double and ``run_voice_agent start``; then, ``--runs`` times, a fresh Chromium on
"/" (its fake microphone plays espeak-ng's "What are your opening hours?" after 7 s of
silence, again every 10 s), click the launcher and measure with the e2e tests' audio probe,
in the page's clock:

(a) click -> the first greeting audio heard in the page;
(b) the end of the visitor's speech (the microphone's loud interval) -> the first reply audio;

then click "End". As the reference, in the same process and through the same double: the
bare LiveKit floor. A page that only connects with livekit-client on click (and publishes
its microphone), and a Python ``livekit.rtc`` participant already in the room that publishes
a tone the moment it sees the browser join (the floor of a) and plays a tone again the moment
it hears the browser's microphone go quiet for 250 ms after speech (the floor of b; 250 ms is
the probe's own hangover). Prints per-run values, medians and ``ours / bare floor``.

Not a test: numbers depend on the machine. WebRTC needs the private network namespace, so
the script re-runs itself under ``scripts/netns-run.sh`` (root, ``unshare -n``). Needs
Chromium, espeak-ng and livekit-client (``cd static/widget && npm ci``).

    .venv/bin/python benchmarks/bench_conversation.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from tests.doubles.local_server import LocalServer  # noqa: E402
from tests.e2e.netns import NETNS_VARIABLE, netns_problem  # noqa: E402

NETNS_RUN = ROOT / "scripts" / "netns-run.sh"
REEXEC_VARIABLE = "VOICE_WIDGET_BENCH_REEXEC"
LIVEKIT_CLIENT = ROOT / "static/widget/node_modules/livekit-client/dist/livekit-client.esm.mjs"
QUESTION = "What are your opening hours?"
REPLY = "We are open from nine to six."
#: The audio probe's loudness threshold (RMS of samples in -1..1) and hangover, in the floor.
LOUD_RMS = 0.02
QUIET_MS = 250
SPEECH_MS = 200
TONE_SECONDS = 1.0
SAMPLE_RATE = 48000
#: The microphone's file: 7 s of silence (as in the e2e test), the question, 1 s of silence.
#: Chromium loops it, so the visitor asks again about every 10 s: when the agent was not
#: listening yet (its greeting came late), the next asking is the one answered and measured.
LEAD, TAIL = 7.0, 1.0

FLOOR_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>bare LiveKit floor</title></head><body>
<button id="talk">Talk</button>
<script type="module">
import * as LK from "/livekit-client.esm.mjs";
const params = new URLSearchParams(location.search);
document.getElementById("talk").addEventListener("click", async () => {
  const room = new LK.Room();
  window.room = room;
  room.on(LK.RoomEvent.TrackSubscribed, (track) => {
    if (track.kind === "audio") document.body.appendChild(track.attach());
  });
  await room.connect(params.get("url"), params.get("token"));
  await room.localParticipant.setMicrophoneEnabled(true);
  window.floorConnected = true;
});
window.floorReady = true;
</script>
</body></html>
"""


def reexec_in_namespace() -> None:
    """Run this script again inside the private network namespace, or exit saying why not."""
    if os.environ.get(NETNS_VARIABLE) != "1" and not os.environ.get(REEXEC_VARIABLE):
        env = {**os.environ, REEXEC_VARIABLE: "1"}
        argv = [str(NETNS_RUN), sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
        os.execve(str(NETNS_RUN), argv, env)
    problem = netns_problem()
    if problem:
        sys.exit(f"bench_conversation: WebRTC cannot run here: {problem}")


def check_machine() -> None:
    from tests.e2e.speech import has_espeak
    from tests.playwright_support import chromium_path

    problem = has_espeak()
    if problem is None and chromium_path() is None:
        problem = "Chromium not found (apt-get install chromium)"
    if problem is None and not LIVEKIT_CLIENT.exists():
        problem = "livekit-client is not installed (cd static/widget && npm ci)"
    if problem:
        sys.exit(f"bench_conversation: {problem}")


# ---- the reference: a page with livekit-client only, and a Python participant ---------------


class FloorPages(LocalServer):
    """The floor's page and livekit-client, from a real HTTP origin on 127.0.0.1."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.page)
        router.add_get("/livekit-client.esm.mjs", self.library)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=FLOOR_PAGE, content_type="text/html")

    async def library(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(LIVEKIT_CLIENT, headers={"Content-Type": "text/javascript"})


class FloorParticipant:
    """A ``livekit.rtc`` participant (on its own loop, via ``serve_in_thread``) that answers
    the browser as fast as LiveKit lets it: a tone as soon as the browser joins, and again as
    soon as the browser's microphone is quiet for ``QUIET_MS`` after ``SPEECH_MS`` of sound."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()
        self.stack: contextlib.AsyncExitStack | None = None
        self.answered_quiet = False

    async def __aenter__(self) -> FloorParticipant:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()

    async def join(self, url: str, room_name: str) -> None:
        from livekit import rtc

        from tests.e2e.conftest import connected, token

        self.answered_quiet = False
        self.stack = contextlib.AsyncExitStack()
        self.room = await self.stack.enter_async_context(connected(url, token("floor", room_name)))
        self.source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=100)
        self.track = rtc.LocalAudioTrack.create_audio_track("tone", self.source)
        self.room.on("participant_connected", self._joined)
        self.room.on("track_subscribed", self._subscribed)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _joined(self, participant: Any) -> None:
        if participant.identity == "browser":
            self._spawn(self._publish_and_greet())

    def _subscribed(self, track: Any, publication: Any, participant: Any) -> None:
        from livekit import rtc

        if participant.identity == "browser" and track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._answer_when_quiet(track))

    async def _publish_and_greet(self) -> None:
        from livekit import rtc

        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(self.track, options)
        await self._tone()

    async def _tone(self) -> None:
        import numpy as np
        from livekit import rtc

        per_frame = SAMPLE_RATE // 100
        for position in range(0, int(TONE_SECONDS * SAMPLE_RATE), per_frame):
            t = np.arange(position, position + per_frame) / SAMPLE_RATE
            wave = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
            await self.source.capture_frame(
                rtc.AudioFrame(wave.tobytes(), SAMPLE_RATE, 1, per_frame)
            )

    async def _answer_when_quiet(self, track: Any) -> None:
        import numpy as np
        from livekit import rtc

        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        loud_ms = quiet_ms = 0.0
        try:
            async for event in stream:
                frame = event.frame
                samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768
                ms = 1000 * frame.samples_per_channel / frame.sample_rate
                rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
                if rms > LOUD_RMS:
                    loud_ms += ms
                    quiet_ms = 0.0
                elif loud_ms >= SPEECH_MS:
                    quiet_ms += ms
                    if quiet_ms >= QUIET_MS:
                        self.answered_quiet = True
                        await self._tone()
                        return
        finally:
            await stream.aclose()

    async def leave(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.stack is not None:
            stack, self.stack = self.stack, None
            await stack.aclose()
            await self.source.aclose()


# ---- one run of each ---------------------------------------------------------------------


def first_onset_after(intervals: list[list[float]], after: float) -> float | None:
    onsets = [start for start, _ in intervals if start > after]
    return min(onsets) if onsets else None


def speech_end(local: list[list[float]], before: float) -> float:
    """The end of the visitor's speech: the last loud microphone interval ending before."""
    ends = [end for _, end in local if end <= before]
    if not ends:
        raise AssertionError(f"no speech heard from the microphone before {before:.0f} ms")
    return max(ends)


def wait_for_idle_process(worker: Any, timeout: float = 60) -> None:
    """Every job process the worker started has finished initializing (a warm one waits)."""
    from tests.e2e.conversation import wait_until

    def idle() -> bool:
        log = worker.log_text()
        return log.count("process initialized") >= log.count("initializing process")

    wait_until(idle, timeout, "the worker's idle job process")


def run_ours(playwright: Any, site: str, wav: Path, openai: Any, worker: Any, n: int) -> tuple:
    from tests.e2e.conversation import Visit, wait_for_ending, wait_until

    wait_for_idle_process(worker)
    openai.script(transcript=QUESTION, default_reply=REPLY)
    visit = Visit(playwright, site, wav, f"bench-ours-{n}")
    try:
        visit.open("/")
        visit.click(".launcher")
        visit.wait_for_state("active", timeout=30)
        clicked = visit.probe()["clicks"][-1]
        greeting = wait_until(
            lambda: first_onset_after(visit.probe()["remote"], clicked), 30, "the greeting"
        )
        visit.wait_for_caption("user", 1, timeout=40)
        heard_at = min(
            c["at"]
            for c in visit.events("voice-widget:transcript")
            if c["role"] == "user" and c.get("final")
        )
        spoken = speech_end(visit.probe()["local"], heard_at)
        reply = wait_until(
            lambda: first_onset_after(visit.probe()["remote"], spoken), 30, "the reply"
        )
        wait_until(lambda: REPLY in visit.captions("agent"), 30, "the reply's caption")
        active = min(e["at"] for e in visit.events("voice-widget:state") if e["state"] == "active")
        visit.click(".end")
        visit.wait_for_state("ended")
        wait_for_ending()
        return greeting - clicked, reply - spoken, active - clicked
    except Exception:
        print(f"run {n} failed; the page saw: {visit.dump()}", file=sys.stderr)
        raise
    finally:
        visit.close()


def run_floor(playwright: Any, pages: str, livekit: Any, floor: Any, wav: Path, n: int) -> tuple:
    from urllib.parse import urlencode

    from tests.e2e.conftest import token
    from tests.e2e.conversation import Visit, wait_until

    room = f"floor-{n}"
    floor.in_thread.call(floor.join, livekit.url, room)
    visit = Visit(playwright, pages, wav, f"bench-floor-{n}")
    try:
        query = urlencode({"url": livekit.url, "token": token("browser", room)})
        visit.page.goto(f"{pages}/?{query}")
        visit.page.wait_for_function("window.floorReady === true")
        visit.page.click("#talk")
        clicked = visit.probe()["clicks"][-1]
        greeting = wait_until(
            lambda: first_onset_after(visit.probe()["remote"], clicked), 30, "the floor's tone"
        )
        wait_until(lambda: floor.answered_quiet, 40, "the floor to hear the microphone go quiet")
        # The floor answers the first time the visitor speaks.
        spoken = min(end for start, end in visit.probe()["local"] if start > clicked)
        reply = wait_until(
            lambda: first_onset_after(visit.probe()["remote"], spoken), 30, "the floor's answer"
        )
        visit.page.evaluate("window.room.disconnect()")
        return greeting - clicked, reply - spoken
    finally:
        visit.close()
        floor.in_thread.call(floor.leave)


# ---- the whole machine -------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reexec_in_namespace()

    logging.disable(logging.INFO)  # the site's and the doubles' request logs
    logging.getLogger("livekit").setLevel(logging.ERROR)  # the floor's v1-path fallback
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vw-bench-")))
        # The site and the worker share one SQLite file (tests.e2e.settings).
        os.environ.update(
            DJANGO_SETTINGS_MODULE="tests.e2e.settings",
            VOICE_WIDGET_E2E_DB=str(tmp / "db.sqlite3"),
            DJANGO_ALLOW_ASYNC_UNSAFE="true",  # Playwright's sync API runs a loop here
        )
        import django

        django.setup()
        check_machine()
        from django.conf import settings
        from django.core.management import call_command
        from django.test.utils import override_settings
        from pytest_django.live_server_helper import LiveServer

        from tests.doubles.livekit_server import LiveKitServerDouble
        from tests.doubles.openai_server import OpenAIServerDouble
        from tests.e2e.conversation import (
            AGENT_NAME,
            API_KEY,
            API_SECRET,
            use_the_doubles,
            wait_for_worker_heartbeat,
            worker_environment,
        )
        from tests.e2e.speech import speak_to_wav
        from tests.e2e.threaded import serve_in_thread
        from tests.e2e.worker_process import REGISTERED, WorkerProcess

        livekit = stack.enter_context(
            serve_in_thread(LiveKitServerDouble(api_key=API_KEY, api_secret=API_SECRET))
        )
        openai = stack.enter_context(serve_in_thread(OpenAIServerDouble()))
        pages = stack.enter_context(serve_in_thread(FloorPages()))
        floor = stack.enter_context(serve_in_thread(FloorParticipant()))
        stack.enter_context(
            override_settings(
                VOICE_WIDGET={
                    **settings.VOICE_WIDGET,
                    "LIVEKIT_URL": livekit.url,
                    "LIVEKIT_API_KEY": API_KEY,
                    "LIVEKIT_API_SECRET": API_SECRET,
                    "AGENT_NAME": AGENT_NAME,
                }
            )
        )

        call_command("migrate", verbosity=0, interactive=False)
        with contextlib.redirect_stdout(io.StringIO()):
            call_command("seed_demo", verbosity=0)
        use_the_doubles("ben")
        site = LiveServer("127.0.0.1")
        stack.callback(site.stop)

        worker = stack.enter_context(
            WorkerProcess(
                worker_environment(livekit.url, openai.base_url), log_path=tmp / "worker.log"
            )
        )
        started = time.monotonic()
        try:
            worker.wait_for_line(REGISTERED, timeout=120)
            wait_for_worker_heartbeat()
        except Exception:
            print(worker.tail(), file=sys.stderr)
            raise
        worker_ready = time.monotonic() - started

        from playwright.sync_api import sync_playwright

        playwright = stack.enter_context(sync_playwright())
        wav = speak_to_wav(QUESTION, tmp / "speech.wav", lead_silence=LEAD, tail_silence=TAIL)
        ours: list[tuple[float, ...]] = []
        bare: list[tuple[float, float]] = []
        for n in range(1, args.runs + 1):
            try:
                ours.append(run_ours(playwright, site.url, wav, openai, worker, n))
            except Exception:
                print(worker.tail(), file=sys.stderr)
                raise
            bare.append(run_floor(playwright, pages.url, livekit, floor, wav, n))
            print(
                f"  run {n}: ours a {ours[-1][0]:.0f} ms, b {ours[-1][1]:.0f} ms; "
                f"bare floor a {bare[-1][0]:.0f} ms, b {bare[-1][1]:.0f} ms",
                file=sys.stderr,
                flush=True,
            )
        report(args.runs, worker_ready, ours, bare)


def report(
    runs: int, worker_ready: float, ours: list[tuple[float, ...]], bare: list[tuple[float, ...]]
) -> None:
    def values(rows: list[tuple[float, ...]], i: int) -> str:
        return ", ".join(f"{row[i]:.0f}" for row in rows)

    def median(rows: list[tuple[float, ...]], i: int) -> float:
        return statistics.median(row[i] for row in rows)

    print(
        f"machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"setup: LiveKit double, OpenAI double (tone TTS), run_voice_agent start registered "
        f"in {worker_ready:.1f} s; {runs} runs, a fresh Chromium each, persona ben on /"
    )
    for label, i in (
        ("(a) click -> first greeting audio heard", 0),
        ("(b) end of the visitor's speech -> first reply audio heard", 1),
    ):
        ours_median, bare_median = median(ours, i), median(bare, i)
        print(f"{label}:")
        print(f"  ours:       {values(ours, i)} ms (median {ours_median:.0f} ms)")
        if i == 0:
            print(
                f"    of which click -> widget 'active' (connected, agent ready, started): "
                f"{values(ours, 2)} ms (median {median(ours, 2):.0f} ms)"
            )
        print(f"  bare floor: {values(bare, i)} ms (median {bare_median:.0f} ms)")
        print(f"  ratio: ours / bare floor = {ours_median / bare_median:.1f}x")


if __name__ == "__main__":
    main()
