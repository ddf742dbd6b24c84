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

then click "End". Ours runs twice per round: a cold click (Playwright's click, whose pointer
reaches the launcher a moment before it presses, so the LiveKit chunk loads after the click)
and "pointer first" (the pointer rests on the launcher until the chunk it fetches has loaded,
as a visitor's hand on its way to the button does; the bare page loads livekit-client with
the page). As the reference, in the same process, through the same doubles: a bare
livekit-agents agent (``benchmarks/bare_agent.py``: the same providers, openai plugin STT, LLM
and TTS pointed at the same OpenAI double, Silero VAD, the persona's turn handling; no
Django, no recorder, no start handshake: it greets as soon as its session runs), dispatched by
the LiveKit double through the browser's token, and a page that only connects with
livekit-client on click and publishes its microphone, heard by the same probe. Prints
per-run values, medians and ``ours / bare``.

Not a test: numbers depend on the machine. WebRTC needs the private network namespace, so
the script re-runs itself under ``scripts/netns-run.sh`` (root, ``unshare -n``). Needs
Chromium, espeak-ng and livekit-client (``cd static/widget && npm ci``).

    .venv/bin/python benchmarks/bench_conversation.py [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import platform
import statistics
import sys
import tempfile
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
#: The microphone's file: 7 s of silence (as in the e2e test), the question, 1 s of silence.
#: Chromium loops it, so the visitor asks again about every 10 s: when the agent was not
#: listening yet (its greeting came late), the next asking is the one answered and measured.
LEAD, TAIL = 7.0, 1.0
#: Both workers take every job however busy the (shared, 2-CPU) machine is: at LiveKit's
#: load threshold a saturated machine would have them refuse the benchmark's conversations.
NO_LOAD_LIMIT = float("inf")

BARE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>bare livekit-client page</title></head><body>
<button id="talk">Talk</button>
<script type="module">
import * as LK from "/livekit-client.esm.mjs";
const params = new URLSearchParams(location.search);
window.visitorFinals = [];
document.getElementById("talk").addEventListener("click", async () => {
  const room = new LK.Room();
  window.room = room;
  room.on(LK.RoomEvent.TrackSubscribed, (track) => {
    if (track.kind === "audio") document.body.appendChild(track.attach());
  });
  // When the agent's final transcript of the visitor's speech arrives (as the widget reads it).
  room.registerTextStreamHandler("lk.transcription", async (reader) => {
    for await (const _ of reader) { /* the text itself is not needed */ }
    const attributes = reader.info.attributes || {};
    const trackId = attributes["lk.transcribed_track_id"];
    if (attributes["lk.transcription_final"] === "true" && trackId
        && room.localParticipant.trackPublications.has(trackId)) {
      window.visitorFinals.push(performance.now());
    }
  });
  await room.connect(params.get("url"), params.get("token"));
  await room.localParticipant.setMicrophoneEnabled(true);
});
window.pageReady = true;
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


# ---- the reference's page: livekit-client only --------------------------------------------


class BarePages(LocalServer):
    """The bare page and livekit-client, from a real HTTP origin on 127.0.0.1."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.page)
        router.add_get("/livekit-client.esm.mjs", self.library)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=BARE_PAGE, content_type="text/html")

    async def library(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(LIVEKIT_CLIENT, headers={"Content-Type": "text/javascript"})


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
    """A job process is warm and every one the worker started has finished initializing (on
    a busy machine LiveKit may register the worker before its first one is ready)."""
    from tests.e2e.conversation import wait_until

    def idle() -> bool:
        log = worker.log_text()
        return log.count("process initialized") >= max(1, log.count("initializing process"))

    wait_until(idle, timeout, "the worker's idle job process")


#: Resolves once the LiveKit chunk the widget fetched (on the pointer reaching it) has loaded.
CHUNK_LOADED = """async () => {
  for (;;) {
    const entry = performance.getEntriesByType('resource')
      .find((e) => e.name.includes('/chunks/livekit-room-'));
    if (entry) return import(entry.name).then(() => true);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}"""


def run_ours(
    playwright: Any,
    site: str,
    wav: Path,
    openai: Any,
    worker: Any,
    n: int,
    *,
    pointer_first: bool = False,
) -> tuple:
    from tests.e2e.conversation import WIDGET, Visit, wait_for_ending, wait_until

    wait_for_idle_process(worker)
    openai.script(transcript=QUESTION, default_reply=REPLY)
    visit = Visit(playwright, site, wav, f"bench-ours-{n}{'-pointer' if pointer_first else ''}")
    try:
        visit.open("/")
        if pointer_first:
            visit.page.locator(WIDGET + ".launcher").hover()
            visit.page.evaluate(CHUNK_LOADED)
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


def run_bare(
    playwright: Any, pages: str, livekit: Any, openai: Any, worker: Any, wav: Path, n: int
) -> tuple:
    from urllib.parse import urlencode

    from benchmarks.bench_worker import BARE_AGENT_NAME
    from tests.e2e.conftest import token
    from tests.e2e.conversation import Visit, wait_until

    wait_for_idle_process(worker)
    openai.script(transcript=QUESTION, default_reply=REPLY)
    room = f"bare-{n}"
    visit = Visit(playwright, pages, wav, f"bench-bare-{n}")
    try:
        jwt = token("browser", room, agents=[(BARE_AGENT_NAME, "")])
        visit.page.goto(f"{pages}/?{urlencode({'url': livekit.url, 'token': jwt})}")
        visit.page.wait_for_function("window.pageReady === true")
        visit.page.click("#talk")
        clicked = visit.probe()["clicks"][-1]
        greeting = wait_until(
            lambda: first_onset_after(visit.probe()["remote"], clicked), 30, "the greeting"
        )
        heard_at = wait_until(
            lambda: visit.page.evaluate("window.visitorFinals")[:1], 40, "the visitor's words"
        )[0]
        spoken = speech_end(visit.probe()["local"], heard_at)
        reply = wait_until(
            lambda: first_onset_after(visit.probe()["remote"], spoken), 30, "the reply"
        )
        visit.page.evaluate("window.room.disconnect()")
        return greeting - clicked, reply - spoken
    except Exception:
        print(f"bare run {n} failed; the worker said:\n{worker.tail()}", file=sys.stderr)
        raise
    finally:
        visit.close()


# ---- the whole machine -------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reexec_in_namespace()

    logging.disable(logging.INFO)  # the site's and the doubles' request logs
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

        from benchmarks.bench_worker import bare_persona, bare_worker
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
        pages = stack.enter_context(serve_in_thread(BarePages()))
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
        persona = bare_persona("ben")
        site = LiveServer("127.0.0.1")
        stack.callback(site.stop)

        worker = stack.enter_context(
            WorkerProcess(
                worker_environment(livekit.url, openai.base_url),
                log_path=tmp / "worker.log",
                load_threshold=NO_LOAD_LIMIT,
            )
        )
        bare_agent = stack.enter_context(
            bare_worker(livekit.url, openai.base_url, persona, tmp / "bare-worker.log")
        )
        try:
            worker.wait_for_line(REGISTERED, timeout=120)
            wait_for_worker_heartbeat()
            bare_agent.wait_for_line(REGISTERED, timeout=120)
        except Exception:
            print(worker.tail(), bare_agent.tail(), sep="\n", file=sys.stderr)
            raise

        from playwright.sync_api import sync_playwright

        playwright = stack.enter_context(sync_playwright())
        wav = speak_to_wav(QUESTION, tmp / "speech.wav", lead_silence=LEAD, tail_silence=TAIL)
        ours: list[tuple[float, ...]] = []
        pointer: list[tuple[float, ...]] = []
        bare: list[tuple[float, float]] = []
        for n in range(1, args.runs + 1):
            try:
                ours.append(run_ours(playwright, site.url, wav, openai, worker, n))
                pointer.append(
                    run_ours(playwright, site.url, wav, openai, worker, n, pointer_first=True)
                )
            except Exception:
                print(worker.tail(), file=sys.stderr)
                raise
            bare.append(run_bare(playwright, pages.url, livekit, openai, bare_agent, wav, n))
            print(
                f"  run {n}: ours a {ours[-1][0]:.0f} ms, b {ours[-1][1]:.0f} ms; "
                f"pointer first a {pointer[-1][0]:.0f} ms, b {pointer[-1][1]:.0f} ms; "
                f"bare a {bare[-1][0]:.0f} ms, b {bare[-1][1]:.0f} ms",
                file=sys.stderr,
                flush=True,
            )
        report(args.runs, ours, pointer, bare)


def report(
    runs: int,
    ours: list[tuple[float, ...]],
    pointer: list[tuple[float, ...]],
    bare: list[tuple[float, ...]],
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
        f"setup: LiveKit double, OpenAI double (tone TTS); ours = run_voice_agent start with "
        f"the widget on / (persona ben), bare = benchmarks/bare_agent.py start with a "
        f"livekit-client page; {runs} runs each, alternating, a fresh Chromium each; ours "
        f"clicked cold and with the pointer first (the LiveKit chunk loaded before the click)"
    )
    for label, i in (
        ("(a) click -> first greeting audio heard", 0),
        ("(b) end of the visitor's speech -> first reply audio heard", 1),
    ):
        bare_median = median(bare, i)
        print(f"{label}:")
        for name, rows in (("ours, cold click", ours), ("ours, pointer first", pointer)):
            print(f"  {name}: {values(rows, i)} ms (median {median(rows, i):.0f} ms)")
            if i == 0:
                print(
                    f"    of which click -> widget 'active' (connected, agent started): "
                    f"{values(rows, 2)} ms (median {median(rows, 2):.0f} ms)"
                )
        print(f"  bare: {values(bare, i)} ms (median {bare_median:.0f} ms)")
        print(
            f"  ratio: ours / bare = {median(ours, i) / bare_median:.2f}x cold click, "
            f"{median(pointer, i) / bare_median:.2f}x pointer first"
        )


if __name__ == "__main__":
    main()
