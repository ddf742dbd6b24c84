"""Requests per second of POST /voice-widget/api/sessions/ through a real server process.

One run: migrate a temporary SQLite database, create a persona, start the example site
under daphne (ASGI, as deployed) on a free 127.0.0.1 port, send a bounded number of
session requests from a few client threads over keep-alive connections, and stop the
server. As the reference, the bare ``AccessToken(...).to_jwt()`` rate in this process.
Prints both and their ratio. Not a test: numbers depend on the machine.

    .venv/bin/python benchmarks/bench_sessions.py [--requests 1000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSIONS_PATH = "/voice-widget/api/sessions/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_database(env: dict[str, str]) -> None:
    """Migrate the temporary database and create the persona, in a separate process."""
    script = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0, interactive=False);"
        "from voice_widget.models import Persona;"
        "Persona.objects.create(name='Bench', slug='bench', instructions='Be brief.',"
        " greeting='Hi!', tts_voice='bench-voice');"
        # A worker's heartbeat (benchmarks.settings keeps it fresh for the whole run): the
        # session endpoint opens conversations only while a worker serves them.
        "from django.utils import timezone; from voice_widget.models import WorkerHeartbeat;"
        "WorkerHeartbeat.objects.create(worker_id='bench', agent_name='voice-widget-bench',"
        " host='bench', pid=1, started_at=timezone.now(), last_seen=timezone.now())"
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True)


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        + ["example_site.asgi:application"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return wait_until_serving(server, port, within=30)


def wait_until_serving(server: subprocess.Popen, port: int, *, within: float) -> subprocess.Popen:
    """``server`` once its health endpoint answers 200 on ``port``; stopped and an error if it
    exits or does not answer ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/voice-widget/api/health/")
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server did not answer within {within:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def post_sessions(port: int, count: int, latencies: list[float], failures: list[str]) -> None:
    body = json.dumps({"persona": "bench", "context": {"page": "benchmark"}})
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", SESSIONS_PATH, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 201:
            failures.append(f"{response.status} {payload[:200]!r}")
    conn.close()


def measure_server(port: int, requests: int, concurrency: int) -> tuple[float, list[float]]:
    post_sessions(port, 20, [], [])  # warm-up: imports, first queries, connection setup
    per_thread = requests // concurrency
    latencies: list[float] = []
    failures: list[str] = []
    threads = [
        threading.Thread(target=post_sessions, args=(port, per_thread, latencies, failures))
        for _ in range(concurrency)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return per_thread * concurrency / elapsed, latencies


def measure_access_token(count: int) -> float:
    from livekit.api import AccessToken, VideoGrants

    def one(i: int) -> str:
        return (
            AccessToken("APIbenchmark", "benchmark-secret-that-is-long-enough-for-livekit-0123")
            .with_identity(f"visitor-{i}")
            .with_grants(VideoGrants(room_join=True, room=f"vw-{i}"))
            .to_jwt()
        )

    for i in range(200):
        one(i)
    started = time.perf_counter()
    for i in range(count):
        one(i)
    return count / (time.perf_counter() - started)


def measure_full_mint(env: dict[str, str], count: int) -> float:
    """Our own token (grants + room configuration + dispatch), in-process, for context."""
    os.environ["DJANGO_SETTINGS_MODULE"] = env["DJANGO_SETTINGS_MODULE"]
    os.environ["BENCH_DB"] = env["BENCH_DB"]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from voice_widget.tokens import mint_participant_token

    started = time.perf_counter()
    for i in range(count):
        mint_participant_token(
            room_name=f"vw-{i}", identity=f"visitor-{i}", conversation_id=f"{i:032x}"
        )
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=20000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vw-bench-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "BENCH_DB": str(Path(tmp) / "bench.sqlite3"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        setup_database(env)
        port = free_port()
        server = start_server(env, port)
        try:
            server_rate, latencies = measure_server(port, args.requests, args.concurrency)
        finally:
            stop_server(server)
        token_rate = measure_access_token(args.tokens)
        mint_rate = measure_full_mint(env, args.tokens // 4)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
    print(
        f"machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"POST {SESSIONS_PATH} via daphne on 127.0.0.1 (SQLite, {args.concurrency} clients, "
        f"{len(latencies)} requests): {server_rate:,.0f} requests/s "
        f"(latency p50 {p50:.1f} ms, p95 {p95:.1f} ms)"
    )
    print(
        f"AccessToken(...).to_jwt() in-process ({args.tokens} tokens): {token_rate:,.0f} tokens/s"
    )
    print(
        f"voice_widget's mint_participant_token in-process ({args.tokens // 4} tokens): "
        f"{mint_rate:,.0f} tokens/s"
    )
    print(
        f"ratio: the endpoint runs at {server_rate / token_rate:.1%} of the bare signing rate "
        f"({token_rate / server_rate:.0f}x slower)"
    )


if __name__ == "__main__":
    main()
