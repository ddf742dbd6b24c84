"""Worker weight: ``run_voice_agent start`` against a bare livekit-agents worker, in one run.

One run: migrate a temporary SQLite database and seed the demo personas (persona ben on the
OpenAI double's models, as in the end-to-end tests); start the LiveKit server double
(``tests/doubles/livekit_server.py``); then, ``--runs`` times and alternating, start

- ours: ``manage.py run_voice_agent start`` (one idle job process, as the e2e tests run it);
- bare: ``benchmarks/bare_agent.py start``, LiveKit's own CLI running a minimal agent with
  the same providers (openai plugin STT/LLM/TTS, Silero VAD loaded in its setup function) and
  one idle job process,

and measure, for each:

- start -> LiveKit's "starting worker" line (the imports, Django, the system checks);
- start -> registered: to its "registered worker" log line (the double accepted the
  registration; LiveKit registers once the idle job process is ready, or after 12 s);
- start -> the idle job process ready (LiveKit's "process initialized": the forkserver's
  preloads, the fork and the setup function);
- the main process's memory once its idle job process is ready: RSS and USS (private:
  Private_Clean + Private_Dirty of ``/proc/PID/smaps_rollup``);
- the idle, prewarmed job process's private memory (USS) and LiveKit's "process initialized"
  time (the setup function's run).

The demo's one persona with LiveKit's noise cancellation (BVC) is switched off for ours and
bare (the bare agent cancels no noise); ours with it on is measured as a third worker, since
every job process then loads that plugin.

Prints per-run values, medians and ``ours / bare``. Not a test: numbers depend on the
machine; the ratios in one run are what to compare. No WebRTC, so no network namespace.

    .venv/bin/python benchmarks/bench_worker.py [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BARE_AGENT = ROOT / "benchmarks" / "bare_agent.py"
BARE_AGENT_NAME = "bare-agent-bench"
#: Persona fields the bare agent copies (providers, prompt, turn-taking).
BARE_PERSONA_FIELDS = (
    "language",
    "instructions",
    "greeting",
    "stt_model",
    "llm_model",
    "tts_model",
    "tts_voice",
    "turn_detection",
    "vad_threshold",
    "min_endpointing_delay",
    "max_endpointing_delay",
    "allow_interruptions",
    "min_interruption_duration",
    "min_interruption_words",
    "false_interruption_timeout",
    "preemptive_generation",
)
#: Both workers take every job however busy the (shared) machine is (LiveKit's load threshold
#: would otherwise mark a worker on a saturated machine unavailable).
NO_LOAD_LIMIT = float("inf")
#: After the job process is ready, let both settle (import-time threads, first GC) a moment.
SETTLE_SECONDS = 2.0


@dataclass
class Sample:
    starting_s: float
    registered_s: float
    job_ready_s: float
    main_rss_mb: float
    main_uss_mb: float
    job_uss_mb: float
    job_init_s: float


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS and USS (private clean + private dirty) of one process, in MiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            values[name.strip()] = int(parts[0])
    uss = values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
    return values.get("Rss", 0) / 1024, uss / 1024


def bare_persona(slug: str) -> dict[str, Any]:
    from voice_widget.models import Persona

    snapshot = Persona.objects.get(slug=slug).snapshot()
    return {name: snapshot[name] for name in BARE_PERSONA_FIELDS}


def log_records(worker: Any, message: str) -> list[dict[str, Any]]:
    """LiveKit's JSON log records with this message (of job processes, not inference)."""
    records = []
    for line in worker.log_lines():
        if message not in line:
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line[line.index("{") :])
            if record.get("message") == message and not record.get("inference"):
                records.append(record)
    return records


def seconds_after_start(worker: Any, record: dict[str, Any]) -> float:
    """When a record was logged, in seconds after the worker's process was started."""
    logged = datetime.fromisoformat(record["timestamp"]).timestamp()
    started = time.time() - (time.monotonic() - worker.started_at)
    return logged - started


def measure(worker: Any) -> Sample:
    from tests.e2e.conversation import wait_until
    from tests.e2e.worker_process import REGISTERED

    try:
        worker.wait_for_line(REGISTERED, timeout=180)
        registered = time.monotonic() - worker.started_at
        record = wait_until(
            lambda: (found := log_records(worker, "process initialized")) and found[0],
            120,
            "a job process",
        )
        starting = seconds_after_start(worker, log_records(worker, "starting worker")[0])
    except Exception:
        print(worker.tail(), file=sys.stderr)
        raise
    time.sleep(SETTLE_SECONDS)
    main_rss, main_uss = memory_mb(worker.pid)
    _, job_uss = memory_mb(int(record["pid"]))
    ready = seconds_after_start(worker, record)
    return Sample(
        starting, registered, ready, main_rss, main_uss, job_uss, float(record["elapsed_time"])
    )


def run_ours(livekit_url: str, tmp: Path, n: str) -> Sample:
    from tests.e2e.conversation import worker_environment
    from tests.e2e.worker_process import WorkerProcess

    # The OpenAI double is never called while idle: any base URL does.
    env = worker_environment(livekit_url, "http://127.0.0.1:9/v1")
    with WorkerProcess(env, log_path=tmp / f"ours-{n}.log", load_threshold=NO_LOAD_LIMIT) as worker:
        return measure(worker)


def bare_worker(
    livekit_url: str, openai_base_url: str, persona: dict[str, Any], log_path: Path
) -> Any:
    """The bare agent's worker process (not started), against the given doubles."""
    from tests.e2e.conversation import API_KEY, API_SECRET
    from tests.e2e.worker_process import WorkerProcess

    env = {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "OPENAI_BASE_URL": openai_base_url,
        "OPENAI_API_KEY": "sk-bench-double",
        "BARE_AGENT_NAME": BARE_AGENT_NAME,
        "BARE_AGENT_PERSONA": json.dumps(persona),
        "BARE_AGENT_IDLE_PROCESSES": "1",
    }
    worker = WorkerProcess(env, log_path=log_path)
    worker.args = [sys.executable, str(BARE_AGENT), "start", "--log-level", "INFO"]
    return worker


def run_bare(livekit_url: str, tmp: Path, persona: dict[str, Any], n: int) -> Sample:
    with bare_worker(livekit_url, "http://127.0.0.1:9/v1", persona, tmp / f"bare-{n}.log") as w:
        return measure(w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    logging.disable(logging.INFO)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vw-bench-")))
        os.environ.update(
            DJANGO_SETTINGS_MODULE="tests.e2e.settings",
            VOICE_WIDGET_E2E_DB=str(tmp / "db.sqlite3"),
        )
        import django

        django.setup()
        from django.core.management import call_command

        from tests.doubles.livekit_server import LiveKitServerDouble
        from tests.e2e.conversation import API_KEY, API_SECRET, use_the_doubles
        from tests.e2e.threaded import serve_in_thread
        from voice_widget.models import NoiseCancellation, Persona

        call_command("migrate", verbosity=0, interactive=False)
        with contextlib.redirect_stdout(io.StringIO()):
            call_command("seed_demo", verbosity=0)
        use_the_doubles("ben")
        # The bare agent cancels no noise; with a persona using LiveKit's noise cancellation
        # every job process of ours loads that plugin. Measured apart, as a third worker.
        bvc = Persona.objects.exclude(noise_cancellation=NoiseCancellation.OFF)
        bvc_slugs = list(bvc.values_list("slug", flat=True))
        bvc.update(noise_cancellation=NoiseCancellation.OFF)
        persona = bare_persona("ben")
        livekit = stack.enter_context(
            serve_in_thread(LiveKitServerDouble(api_key=API_KEY, api_secret=API_SECRET))
        )
        ours: list[Sample] = []
        bare: list[Sample] = []
        with_bvc: list[Sample] = []
        for n in range(1, args.runs + 1):
            ours.append(run_ours(livekit.url, tmp, f"{n}"))
            bare.append(run_bare(livekit.url, tmp, persona, n))
            print(f"  run {n}: ours {ours[-1]}\n         bare {bare[-1]}", file=sys.stderr)
            if bvc_slugs:
                personas = Persona.objects.filter(slug__in=bvc_slugs)
                personas.update(noise_cancellation=NoiseCancellation.BVC)
                with_bvc.append(run_ours(livekit.url, tmp, f"bvc-{n}"))
                personas.update(noise_cancellation=NoiseCancellation.OFF)
                print(f"         ours with BVC {with_bvc[-1]}", file=sys.stderr)
        report(ours, bare, with_bvc, bvc_slugs)


def fmt(values: list[float], digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def report(
    ours: list[Sample], bare: list[Sample], with_bvc: list[Sample], bvc_slugs: list[str]
) -> None:
    print(
        f"machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"setup: LiveKit double; {len(ours)} runs each, alternating; one idle job process; "
        "ours = run_voice_agent start, bare = benchmarks/bare_agent.py start"
    )
    for label, field, unit, digits in (
        ("start -> LiveKit's 'starting worker' (imports, Django, checks)", "starting_s", "s", 1),
        ("start -> registered (LiveKit waits <= 12 s for a job process)", "registered_s", "s", 1),
        ("start -> the idle job process ready", "job_ready_s", "s", 1),
        ("main process RSS", "main_rss_mb", "MiB", 0),
        ("main process USS (private)", "main_uss_mb", "MiB", 0),
        ("idle job process USS (private)", "job_uss_mb", "MiB", 1),
        ("job process setup (LiveKit's 'process initialized')", "job_init_s", "s", 2),
    ):
        ours_values = [getattr(s, field) for s in ours]
        bare_values = [getattr(s, field) for s in bare]
        ours_median, bare_median = statistics.median(ours_values), statistics.median(bare_values)

        print(f"{label}:")
        print(f"  ours: {fmt(ours_values, digits)} {unit} (median {ours_median:.{digits}f})")
        print(f"  bare: {fmt(bare_values, digits)} {unit} (median {bare_median:.{digits}f})")
        print(f"  ratio: ours / bare = {ours_median / bare_median:.2f}x")
    if with_bvc:
        uss = [s.job_uss_mb for s in with_bvc]
        setup = [s.job_init_s for s in with_bvc]
        print(
            f"ours with noise cancellation (persona {', '.join(bvc_slugs)} on BVC, as seeded): "
            f"idle job process USS {fmt(uss, 1)} MiB (median {statistics.median(uss):.1f}), "
            f"setup {fmt(setup, 2)} s"
        )


if __name__ == "__main__":
    main()
