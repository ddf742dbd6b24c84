"""The session endpoint against its references, on every server of the deployment checklist.

For each database (SQLite file; PostgreSQL when ``--postgres URL`` names a server, in a
database of its own created and dropped here) and each server (daphne; gunicorn with sync
workers; gunicorn with uvicorn workers; one worker process each), in one run: requests/s of

- ``POST /voice-widget/api/sessions/`` (the real endpoint: throttles, origin, budget,
  worker liveness, per-visitor cap, INSERT, token), every request a new visitor
  (``X-Forwarded-For``), so the per-visitor cap stays on;
- a "database floor" view: one primary-key lookup of the persona and one INSERT of a
  conversation, the least any implementation must do;
- a trivial JSON view;

through the same middleware, measured in alternating rounds so load on the machine
falls on all three alike. Prints the ratios session/floor and session/trivial, and the
server's own CPU time per request of each view (all its processes, read from Linux's
scheduler statistics). Before the servers, in a child process: each view's CPU time per
request through Django's test client, and on PostgreSQL the database server's CPU time
per request (its backend process), which the served figures pay too.

    .venv/bin/python benchmarks/bench_session_floor.py [--requests 100] [--rounds 6]
        [--concurrency 4] [--postgres postgres://postgres@127.0.0.1:5432/postgres]
        [--server "gunicorn sync" ...] [--no-sqlite] [--skip-in-process]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_sessions import (  # noqa: E402
    ROOT,
    free_port,
    stop_server,
    wait_until_serving,
)

VIEWS = {
    "session": "/voice-widget/api/sessions/",
    "floor": "/bench/floor/",
    "trivial": "/bench/trivial/",
}
SERVERS = {
    "daphne": lambda port: (
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        + ["example_site.asgi:application"]
    ),
    "gunicorn sync": lambda port: (
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b"]
        + [f"127.0.0.1:{port}", "example_site.wsgi:application"]
    ),
    "gunicorn+uvicorn": lambda port: (
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b"]
        + [f"127.0.0.1:{port}", "-k", "uvicorn.workers.UvicornWorker"]
        + ["example_site.asgi:application"]
    ),
}
#: Servers running Django under ASGI: a thread per request, so no kept connections.
ASGI_SERVERS = {"daphne", "gunicorn+uvicorn"}
_addresses = itertools.count(1)
_address_lock = threading.Lock()


def next_address() -> str:
    with _address_lock:
        n = next(_addresses)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def setup_database(env: dict[str, str]) -> int:
    """Migrate, create the persona and a worker's heartbeat; the persona's primary key."""
    script = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0, interactive=False);"
        "from voice_widget.models import Persona;"
        "p = Persona.objects.create(name='Bench', slug='bench', instructions='Be brief.',"
        " greeting='Hi!', tts_voice='bench-voice');"
        "from django.utils import timezone; from voice_widget.models import WorkerHeartbeat;"
        "WorkerHeartbeat.objects.create(worker_id='bench', agent_name='voice-widget-bench',"
        " host='bench', pid=1, started_at=timezone.now(), last_seen=timezone.now());"
        "print(p.pk)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return int(out.stdout.split()[-1])


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return wait_until_serving(server, port, within=60)


def post_many(port: int, path: str, body: bytes, count: int, failures: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(count):
        headers = {"Content-Type": "application/json", "X-Forwarded-For": next_address()}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 201:
            failures.append(f"{path} {response.status} {payload[:200]!r}")
        if response.will_close:
            conn.close()  # gunicorn's sync workers close after each response: reconnect
    conn.close()


def rate(port: int, path: str, body: bytes, requests: int, concurrency: int) -> tuple[int, float]:
    per_thread = requests // concurrency
    failures: list[str] = []
    threads = [
        threading.Thread(target=post_many, args=(port, path, body, per_thread, failures))
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
    return per_thread * concurrency, elapsed


def measure(env: dict[str, str], server: str, persona_pk: int, args: argparse.Namespace) -> dict:
    body = json.dumps(
        {"persona": "bench", "persona_pk": persona_pk, "context": {"page": "benchmark"}}
    ).encode()
    port = free_port()
    if server in ASGI_SERVERS:
        env = {**env, "BENCH_DB_POOL": "on"}  # see floor_settings
    process = start(SERVERS[server](port), env, port)
    totals = {view: [0, 0.0, 0.0] for view in VIEWS}
    try:
        for path in VIEWS.values():  # warm-up: imports, caches, connections
            rate(port, path, body, 20, 1)
        processes = process_tree(process.pid)  # the workers exist now
        for _ in range(args.rounds):
            for view, path in VIEWS.items():
                cpu_started = sum(map(process_cpu_seconds, processes))
                done, elapsed = rate(port, path, body, args.requests, args.concurrency)
                totals[view][0] += done
                totals[view][1] += elapsed
                totals[view][2] += sum(map(process_cpu_seconds, processes)) - cpu_started
    except RuntimeError as exc:
        stop_server(process)
        log = process.stderr.read().decode(errors="replace")[-3000:]
        raise RuntimeError(f"{server}: {exc}\nserver log:\n{log}") from exc
    finally:
        stop_server(process)
    return {
        view: {"rate": done / elapsed, "cpu_ms": cpu / done * 1000}
        for view, (done, elapsed, cpu) in totals.items()
    }


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a gunicorn arbiter and its worker)."""
    found = [pid]
    for parent in found:
        children = Path(f"/proc/{parent}/task/{parent}/children")
        if children.exists():
            found.extend(int(child) for child in children.read_text().split())
    return found


def cpu_per_request(persona_pk: int, rounds: int, requests: int) -> None:
    """In this process (the child run by ``in_process``): CPU time per request of each view
    through Django's test client (middleware, view, database; no server), alternating, and
    the statements of one session request. CPU time, unlike rates, barely depends on what
    else the machine runs."""
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    body = json.dumps({"persona": "bench", "persona_pk": persona_pk, "context": {"page": "b"}})

    def send(path: str, count: int) -> None:
        for _ in range(count):
            response = client.post(
                path, body, content_type="application/json", HTTP_X_FORWARDED_FOR=next_address()
            )
            if response.status_code != 201:
                raise RuntimeError(f"{path}: {response.status_code} {response.content[:200]!r}")

    cpu = dict.fromkeys(VIEWS, 0.0)
    server_cpu = dict.fromkeys(VIEWS, 0.0)
    for path in VIEWS.values():
        send(path, 20)
    backend = database_server_process(connection)
    for _ in range(rounds):
        for view, path in VIEWS.items():
            started, server_started = time.process_time(), cpu_seconds(backend)
            send(path, requests)
            cpu[view] += time.process_time() - started
            server_cpu[view] += cpu_seconds(backend) - server_started
    with CaptureQueriesContext(connection) as queries:
        send(VIEWS["session"], 10)
    per = {view: seconds / (rounds * requests) * 1000 for view, seconds in cpu.items()}
    print(
        f"{connection.vendor:10} in-process CPU per request: session {per['session']:.2f} ms, "
        f"floor {per['floor']:.2f} ms, trivial {per['trivial']:.2f} ms; "
        f"floor/session CPU {per['floor'] / per['session']:.0%}; "
        # Averaged over 10 in a row: the liveness is asked again every few seconds.
        f"statements per anonymous session: {len(queries.captured_queries) / 10:.1f}",
        flush=True,
    )
    if backend is not None:
        # What the served figures pay and the CPU above leaves out: the database server's
        # own work for the statements (on the same cores as the web server).
        per = {view: seconds / (rounds * requests) * 1000 for view, seconds in server_cpu.items()}
        print(
            f"{connection.vendor:10} database server CPU per request: session "
            f"{per['session']:.2f} ms, floor {per['floor']:.2f} ms, "
            f"trivial {per['trivial']:.2f} ms",
            flush=True,
        )


def database_server_process(connection: Any) -> int | None:
    """The process id of the PostgreSQL backend serving ``connection`` when it runs on this
    machine (its CPU time is readable), else ``None`` (SQLite runs in this process)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if Path(f"/proc/{pid}/schedstat").exists() else None


def cpu_seconds(pid: int | None) -> float:
    """CPU time of the single-threaded process ``pid`` so far (Linux's scheduler statistics,
    in nanoseconds); 0 without one."""
    if pid is None:
        return 0.0
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def process_cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid`` so far, all its threads, ended ones too (user + system,
    in clock ticks: 10 ms, so read over many requests)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(env: dict[str, str], persona_pk: int, args: argparse.Namespace) -> None:
    subprocess.run(
        [sys.executable, __file__, "--cpu-child", str(persona_pk)]
        + ["--rounds", str(args.rounds), "--requests", str(args.requests)],
        env=env,
        cwd=ROOT,
        check=True,
    )


def postgres_database(url: str) -> tuple[str, str]:
    """A fresh database on the server of ``url``: (its URL, its name)."""
    import psycopg

    name = f"vw_bench_floor_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_postgres_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_database(label: str, env: dict[str, str], args: argparse.Namespace) -> None:
    persona_pk = setup_database(env)
    if not args.skip_in_process:
        in_process(env, persona_pk, args)
    for server in args.servers or SERVERS:
        results = measure(env, server, persona_pk, args)
        rates = {view: result["rate"] for view, result in results.items()}
        cpu = {view: result["cpu_ms"] for view, result in results.items()}
        print(
            f"{label:10} {server:17} session {rates['session']:6,.0f}/s  "
            f"floor {rates['floor']:6,.0f}/s  trivial {rates['trivial']:6,.0f}/s  "
            f"session/floor {rates['session'] / rates['floor']:4.0%}  "
            f"session/trivial {rates['session'] / rates['trivial']:4.0%}  "
            # The server's own CPU per request (all its processes): served, the session's
            # extra work beside the floor's, against the in-process difference above.
            f"server CPU/request session {cpu['session']:.2f} ms floor {cpu['floor']:.2f} ms "
            f"trivial {cpu['trivial']:.2f} ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="per view and round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (its database is unused)")
    parser.add_argument(
        "--server",
        dest="servers",
        action="append",
        choices=list(SERVERS),
        help="only this server (repeatable; default: all)",
    )
    parser.add_argument(
        "--no-sqlite", action="store_true", help="skip SQLite (with --postgres: PostgreSQL only)"
    )
    parser.add_argument(
        "--skip-in-process", action="store_true", help="skip the in-process CPU figures"
    )
    parser.add_argument("--cpu-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu_child is not None:
        cpu_per_request(args.cpu_child, args.rounds, args.requests)
        return

    print(
        f"machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; {args.rounds} rounds x "
        f"{args.requests} requests per view, {args.concurrency} keep-alive clients, "
        "one server process",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="vw-bench-floor-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.floor_settings",
            "BENCH_DB": str(Path(tmp) / "bench.sqlite3"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        env.pop("BENCH_DATABASE_URL", None)
        if not args.no_sqlite:
            run_database("SQLite", env, args)
    if args.postgres:
        url, name = postgres_database(args.postgres)
        try:
            run_database("PostgreSQL", {**env, "BENCH_DATABASE_URL": url}, args)
        finally:
            drop_postgres_database(args.postgres, name)


if __name__ == "__main__":
    main()
