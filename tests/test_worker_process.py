"""``WorkerProcess`` runs the REAL ``manage.py run_voice_agent start`` for the end-to-end tests.

Against the registration-only LiveKit server double, with ``tests.e2e.settings``: LiveKit
comes from the environment, and the database is the SQLite file the test process names
(migrated here the way pytest-django migrates it in the end-to-end tests).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.doubles.livekit_server import LiveKitServerDouble
from tests.e2e.worker_process import REGISTERED, REPO, WorkerExited, WorkerProcess

pytestmark = pytest.mark.agent

API_KEY = "APIe2ekey"
API_SECRET = "e2e-secret-that-is-long-enough-for-livekit-0123456789"


@pytest.fixture
def e2e_db(tmp_path):
    """A migrated SQLite file, as ``tests.e2e.settings`` names it for every process."""
    path = tmp_path / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.e2e.settings",
        VOICE_WIDGET_E2E_DB=str(path),
        PYTHONPATH=str(REPO),
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=120
    )
    return path


def heartbeats(path):
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT agent_name, pid, stopped_at FROM voice_widget_workerheartbeat"
        ).fetchall()


async def test_the_real_worker_registers_shares_the_database_and_stops_on_sigterm(e2e_db, tmp_path):
    async with LiveKitServerDouble() as livekit:
        env = {
            "VOICE_WIDGET_E2E_DB": str(e2e_db),
            "LIVEKIT_URL": livekit.url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "VOICE_WIDGET_AGENT_NAME": "e2e-agent",
        }
        async with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
            line = await worker.await_line(REGISTERED, timeout=60)
            assert '"agent_name": "e2e-agent"' in line  # livekit's lines are JSON in start mode
            await worker.await_line("Registered with LiveKit at", timeout=10)
            await worker.await_line("process initialized", timeout=30, from_start=True)
            for _ in range(100):  # the heartbeat is written just after the registration
                if rows := heartbeats(e2e_db):
                    break
                await asyncio.sleep(0.05)
            [(agent_name, pid, stopped_at)] = rows
            assert (agent_name, pid, stopped_at) == ("e2e-agent", worker.pid, None)
            assert len(worker.group_pids()) >= 2  # the worker and its idle job process
            # The provider plugins (Silero's ONNX runtime among them) are loaded once, in the
            # forkserver the job processes are forked from: the worker itself runs no job.
            assert "onnxruntime" not in Path(f"/proc/{worker.pid}/maps").read_text()
            others = [pid for pid in worker.group_pids() if pid != worker.pid]
            assert any("onnxruntime" in Path(f"/proc/{pid}/maps").read_text() for pid in others)

            began = time.monotonic()
            assert await worker.aterminate(timeout=10) == 0
            assert time.monotonic() - began < 5
            assert worker.group_pids() == []

    assert [r["agent_name"] for r in livekit.registrations] == ["e2e-agent"]
    assert heartbeats(e2e_db)[0][2] is not None  # marked stopped in the shared file
    log = worker.log_text()
    assert "shutting down worker" in log and "Traceback" not in log


def test_waiting_on_a_worker_that_exits_reports_its_log(tmp_path):
    worker = WorkerProcess(log_path=tmp_path / "worker.log", extra_args=["--bogus"])
    with worker, pytest.raises(WorkerExited, match="unrecognized arguments: --bogus"):
        worker.wait_for_line(REGISTERED, timeout=60)
    assert worker.returncode not in (None, 0)


def postgres_sockets(pid: int, port: int = 5432) -> int:
    """Established TCP connections to ``port`` whose socket process ``pid`` holds open."""
    remote = f":{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[2].endswith(remote) and fields[3] == "01":  # 01: ESTABLISHED
                    inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def test_on_the_example_sites_postgresql_pool_each_job_process_has_its_own(
    postgres_database, tmp_path
):
    # The example site pools PostgreSQL connections; the forkserver the job processes are
    # forked from must hold none (nor a pool's threads), so no two processes share a socket.
    database_url, connections_to_it = postgres_database
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="example_site.settings", DATABASE_URL=database_url, DEBUG="True"
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=180
    )
    async with LiveKitServerDouble() as livekit:
        worker_env = {
            "DATABASE_URL": database_url,
            "DEBUG": "True",
            "LIVEKIT_URL": livekit.url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "VOICE_WIDGET_AGENT_NAME": "pool-agent",
        }
        async with WorkerProcess(
            worker_env,
            log_path=tmp_path / "worker.log",
            settings_module="example_site.settings",
            num_idle_processes=2,
        ) as worker:
            await worker.await_line(REGISTERED, timeout=60)
            for _ in range(600):  # both idle job processes ran prewarm
                if worker.log_text().count('"process initialized"') >= 2:
                    break
                await asyncio.sleep(0.1)
            others = [pid for pid in worker.group_pids() if pid != worker.pid]
            # The forkserver is the worker's child; the job processes, forked from it, are its
            # children (and carry the same command line).
            [forkserver] = [
                pid
                for pid in others
                if parent_pid(pid) == worker.pid
                and b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            jobs = [pid for pid in others if parent_pid(pid) == forkserver]
            assert len(jobs) == 2, others
            assert postgres_sockets(forkserver) == 0
            # Each job process read the personas in prewarm, from a pool of its own.
            assert all(postgres_sockets(pid) >= 1 for pid in jobs)
            held = sum(postgres_sockets(pid) for pid in [worker.pid, *others])
            assert held == connections_to_it()  # none shared between processes
            assert await worker.aterminate(timeout=10) == 0
    assert "Traceback" not in worker.log_text()
