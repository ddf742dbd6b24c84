"""``WorkerProcess``: the REAL ``manage.py run_voice_agent start`` as a subprocess.

::

    with WorkerProcess(env={"LIVEKIT_URL": lk.url, "OPENAI_BASE_URL": openai.base_url},
                       log_path=tmp_path / "worker.log") as worker:
        await worker.await_line("registered worker")      # or wait_for_line() in sync code
        ...
        worker.terminate()                                 # SIGTERM, then SIGKILL if needed

The worker runs in its own session (process group): leaving the block kills whatever of it
is left, job processes included. Its stdout and stderr go to one log file. It uses
``DJANGO_SETTINGS_MODULE=tests.e2e.settings`` unless told otherwise, i.e. the SQLite file
``$VOICE_WIDGET_E2E_DB`` the test process also uses. The environment is the test process's
minus its ``LIVEKIT_*``, ``DJANGO_*``, ``OPENAI_*``, ``VOICE_WIDGET_*`` (but
``VOICE_WIDGET_E2E_DB`` is kept) and ``DATABASE_URL`` variables, plus ``env``; LiveKit
credentials not given default to the tests' own (``tests.settings``).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SETTINGS = "tests.e2e.settings"
#: The line the worker logs once the LiveKit server accepted its registration.
REGISTERED = "registered worker"
_DROPPED_PREFIXES = ("LIVEKIT_", "DJANGO_", "OPENAI_", "VOICE_WIDGET_")

__all__ = ["REGISTERED", "WorkerExited", "WorkerProcess", "free_port"]


class WorkerExited(RuntimeError):
    """The worker exited while a test was waiting for it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))


class WorkerProcess:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        log_path: str | Path,
        mode: str = "start",
        agent_name: str | None = None,
        port: int | None = None,
        # Never "full" from load: the test machine runs Chromium, daphne, the doubles and the
        # worker on a few cores, and a busy moment must not keep the agent from its job.
        load_threshold: float = math.inf,
        num_idle_processes: int = 1,
        log_level: str | None = None,
        extra_args: Sequence[str] = (),
        settings_module: str = DEFAULT_SETTINGS,
        python: str = sys.executable,
        cwd: str | Path = REPO,
    ) -> None:
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.args = [python, "manage.py", "run_voice_agent", mode]
        self.args += ["--load-threshold", str(load_threshold)]
        self.args += ["--num-idle-processes", str(num_idle_processes)]
        self.args += ["--port", str(self.port), "--host", "127.0.0.1"]
        if agent_name:
            self.args += ["--agent-name", agent_name]
        if log_level:
            self.args += ["--log-level", log_level]
        self.args += list(extra_args)
        self.cwd = Path(cwd)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k == "VOICE_WIDGET_E2E_DB"
            or not (k.startswith(_DROPPED_PREFIXES) or k == "DATABASE_URL")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE=settings_module,
            PYTHONPATH=os.pathsep.join(
                [str(self.cwd)] + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ else [])
            ),
            PYTHONUNBUFFERED="1",
        )
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._read_offset = 0

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> WorkerProcess:
        if self.process is not None:
            raise RuntimeError("the worker was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in kill())
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    async def __aenter__(self) -> WorkerProcess:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` to the worker's main process (as a process manager would) and wait up
        to ``timeout`` s for it to exit; then kill the whole group. Returns the exit code, or
        raises ``TimeoutError`` (after killing) if it did not exit in time."""
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TimeoutError(
                    f"the worker did not exit within {timeout} s of signal {sig}\n{self.tail()}"
                ) from None
        self._kill_group()
        return self.process.returncode

    async def aterminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """``terminate`` without blocking the event loop (servers in this loop keep serving)."""
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            self.process.send_signal(sig)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None:
                if time.monotonic() > deadline:
                    self.kill()
                    raise TimeoutError(
                        f"the worker did not exit within {timeout} s of signal {sig}\n{self.tail()}"
                    )
                await asyncio.sleep(0.05)
        self._kill_group()
        return self.process.returncode

    def kill(self) -> None:
        """Kill the worker and every process of its group (idempotent)."""
        if self.process is not None:
            if self.process.poll() is None:
                self._kill_group()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
            self._kill_group()
        if self._log is not None:
            self._log.close()
            self._log = None

    def group_pids(self) -> list[int]:
        """Live (not zombie) processes of the worker's process group: it and its jobs."""
        assert self.process is not None, "not started"
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            # after the command: state, ppid, pgrp
            if fields[0] != "Z" and int(fields[2]) == self.process.pid:
                pids.append(int(entry.name))
        return sorted(pids)

    def _kill_group(self, wait: float = 5.0) -> None:
        """SIGKILL what is left of the group and wait (up to ``wait`` s) until it is gone."""
        assert self.process is not None
        deadline = time.monotonic() + wait
        while True:
            try:
                # The session leader's pid is the group id (start_new_session=True).
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                return
            if not self.group_pids() or time.monotonic() > deadline:
                return
            time.sleep(0.02)

    # -- the log ----------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self) -> list[str]:
        return self.log_text().splitlines()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_lines()[-lines:])

    def _find(self, pattern: re.Pattern[str], since: int) -> tuple[str, int] | None:
        """The first complete line after offset ``since`` matching, and the offset past it."""
        text = self.log_text()
        position = since
        for line in text[since:].splitlines(keepends=True):
            position += len(line)
            if line.endswith("\n") and pattern.search(line):
                return line.rstrip("\n"), position
        return None

    def _check(self, pattern: re.Pattern[str], deadline: float, timeout: float) -> str | None:
        found = self._find(pattern, self._read_offset)
        if found is not None:
            line, self._read_offset = found
            return line
        if not self.running:
            found = self._find(pattern, self._read_offset)  # written just before it exited
            if found is not None:
                line, self._read_offset = found
                return line
            raise WorkerExited(
                f"the worker exited ({self.returncode}) before logging {pattern.pattern!r}\n"
                f"{self.tail()}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the worker logged no line matching {pattern.pattern!r} in {timeout} s\n"
                f"{self.tail()}"
            )
        return None

    def wait_for_line(
        self, pattern: str | re.Pattern[str], timeout: float = 30.0, *, from_start: bool = False
    ) -> str:
        """The first log line containing ``pattern`` (a substring, or a compiled regex),
        after the line the previous wait returned (``from_start=True``: from the log's
        start). Raises ``TimeoutError`` or ``WorkerExited``, each with the log's tail.
        Blocks: in async tests use ``await_line``."""
        regex = _compile(pattern)
        if from_start:
            self._read_offset = 0
        deadline = time.monotonic() + timeout
        while (line := self._check(regex, deadline, timeout)) is None:
            time.sleep(0.05)
        return line

    async def await_line(
        self, pattern: str | re.Pattern[str], timeout: float = 30.0, *, from_start: bool = False
    ) -> str:
        """``wait_for_line`` for async tests: the event loop keeps running while it waits."""
        regex = _compile(pattern)
        if from_start:
            self._read_offset = 0
        deadline = time.monotonic() + timeout
        while (line := self._check(regex, deadline, timeout)) is None:
            await asyncio.sleep(0.05)
        return line

    def __repr__(self) -> str:
        state = "not started" if self.process is None else f"pid {self.pid}, rc {self.returncode}"
        return f"<WorkerProcess {state} log={self.log_path}>"
