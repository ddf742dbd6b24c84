"""The example site served by real server processes on 127.0.0.1, and bursts against them.

::

    env = site_environment(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    prepare_database(env)                       # migrate, one persona "burst"
    with SiteServers(env, count=2) as servers:  # two daphne processes, stopped on exit
        results = burst(servers.ports, 50)      # 50 simultaneous session requests

Used by the burst tests and by benchmarks/bench_burst.py. Settings: ``tests.burst_settings``
(the example site, its SQLite options and its ``REDIS_URL`` cache included).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SESSIONS_PATH = "/voice-widget/api/sessions/"
HEALTH_PATH = "/voice-widget/api/health/"
PERSONA = "burst"
_DROPPED_PREFIXES = ("LIVEKIT_", "DJANGO_", "VOICE_WIDGET_", "BURST_", "DATABASE_")
_DROPPED = {"CONN_MAX_AGE", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_environment(
    *,
    database_url: str,
    redis_url: str = "",
    cache_key_prefix: str = "",
    throttle: bool = True,
    max_unjoined: int | None = 2,
    settings_module: str = "tests.burst_settings",
) -> dict[str, str]:
    """The environment of a production-shaped example site (DEBUG off, LiveKit credentials
    for signing; no LiveKit server is contacted to create a session)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_DROPPED_PREFIXES) and name not in _DROPPED
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "DEBUG": "False",
            "SECRET_KEY": "burst-only-secret-key-not-used-anywhere-else-0123456789",
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "BURST_CACHE_KEY_PREFIX": cache_key_prefix,
            "BURST_THROTTLE": "on" if throttle else "off",
            "BURST_MAX_UNJOINED": "none" if max_unjoined is None else str(max_unjoined),
            "LIVEKIT_URL": "ws://127.0.0.1:7880",
            "LIVEKIT_API_KEY": "APIburst",
            "LIVEKIT_API_SECRET": "burst-secret-that-is-long-enough-for-livekit-0123456789",
        }
    )
    return env


def prepare_database(env: dict[str, str], *, max_concurrent: int | None = None) -> None:
    """Migrate the site's database, create the persona (with ``max_concurrent`` as its
    concurrency limit) and a worker's heartbeat, in a process of its own."""
    script = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0, interactive=False);"
        "from voice_widget.models import Persona;"
        f"Persona.objects.create(name='Burst', slug={PERSONA!r}, instructions='Be brief.',"
        " greeting='Hi!', tts_voice='burst-voice',"
        f" max_concurrent_conversations={max_concurrent!r});"
        # A worker's heartbeat (tests.burst_settings keeps it fresh for the whole run): the
        # session endpoint opens conversations only while a worker serves them.
        "from django.utils import timezone; from voice_widget.models import WorkerHeartbeat;"
        "from voice_widget.conf import vw_settings;"
        "WorkerHeartbeat.objects.create(worker_id='burst', agent_name=vw_settings.AGENT_NAME,"
        " host='burst', pid=1, started_at=timezone.now(), last_seen=timezone.now())"
    )
    subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, check=True, capture_output=True
    )


def count_conversations(env: dict[str, str]) -> int:
    """Rows in the Conversation table, read by a process of its own."""
    script = (
        "import django; django.setup();"
        "from voice_widget.models import Conversation; print(Conversation.objects.count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.strip())


class SiteServers:
    """``count`` daphne processes serving the example site, each on a free 127.0.0.1 port.

    Each process's stderr goes to a file (``logs``), read after the fact, so a full pipe
    never blocks a server.
    """

    def __init__(self, env: dict[str, str], *, count: int = 1, log_dir: Path) -> None:
        self.env = env
        self.count = count
        self.log_dir = Path(log_dir)
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def __enter__(self) -> SiteServers:
        try:
            for n in range(self.count):
                port = free_port()
                log = self.log_dir / f"daphne-{n}-{port}.log"
                with log.open("wb") as stderr:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
                        + ["example_site.asgi:application"],
                        env=self.env,
                        cwd=REPO,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    )
                self.ports.append(port)
                self.processes.append(process)
                self.logs.append(log)
            for port, process, log in zip(self.ports, self.processes, self.logs, strict=True):
                _wait_until_serving(port, process, log)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())


def _wait_until_serving(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", HEALTH_PATH)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server on port {port} did not answer within 60 s")


@dataclass(frozen=True)
class Answer:
    status: int
    error: str  # the API's error code, "" for a 201 or a body that is not ours

    @property
    def label(self) -> str:
        return str(self.status) if not self.error else f"{self.status} {self.error}"


def burst(ports: list[int], count: int, *, timeout: float = 60) -> list[Answer]:
    """``count`` session requests sent at once (each thread connects first, then all send
    together), spread over the servers on ``ports`` in turn."""
    ready = threading.Barrier(count)
    answers: list[Answer | None] = [None] * count

    def one(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ports[n % len(ports)], timeout=timeout)
        try:
            conn.connect()
            ready.wait(timeout=timeout)
            answers[n] = _post_session(conn)
        except (OSError, threading.BrokenBarrierError) as exc:
            answers[n] = Answer(0, type(exc).__name__)
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [answer or Answer(0, "no answer") for answer in answers]


def load(ports: list[int], total: int, *, clients: int = 8, timeout: float = 60) -> list[Answer]:
    """``total`` session requests from ``clients`` threads, each over one keep-alive
    connection to one of the servers on ``ports`` (in turn), one request after another."""
    answers: list[Answer] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ports[n % len(ports)], timeout=timeout)
        mine = []
        for _ in range(total // clients + (n < total % clients)):
            try:
                mine.append(_post_session(conn))
            except OSError as exc:
                mine.append(Answer(0, type(exc).__name__))
                conn.close()
        conn.close()
        with lock:
            answers.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _post_session(conn: http.client.HTTPConnection) -> Answer:
    body = json.dumps({"persona": PERSONA, "context": {"page": "burst"}})
    conn.request("POST", SESSIONS_PATH, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    try:
        error = json.loads(payload).get("error", "")
    except (ValueError, AttributeError):
        error = "not-json"
    return Answer(response.status, error or "")


def tally(answers: list[Answer]) -> Counter:
    """``{"201": 10, "429 throttled": 40, ...}``."""
    return Counter(answer.label for answer in answers)
