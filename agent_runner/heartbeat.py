"""The worker's heartbeat row (``WorkerHeartbeat``), which the web side's health check reads.

Only the worker's main process writes it: every ``HEARTBEAT_INTERVAL`` seconds while the
worker is registered with LiveKit, with the number of running jobs, and ``stopped_at`` on
a clean shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from voice_widget.conf import vw_settings
from voice_widget.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


class Heartbeat:
    """Keeps one ``WorkerHeartbeat`` row fresh while the worker runs."""

    def __init__(
        self,
        *,
        agent_name: str,
        active_jobs: Callable[[], int] = lambda: 0,
        connected: Callable[[], bool] = lambda: True,
        interval: float | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.agent_name = agent_name
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.worker_id = worker_id or f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.started_at = timezone.now()
        self.interval = float(interval if interval is not None else vw_settings.HEARTBEAT_INTERVAL)
        self._active_jobs = active_jobs
        self._connected = connected
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name="vw_worker_heartbeat")

    async def beat(self) -> None:
        """Write the row now (created on the first beat)."""
        await sync_to_async(self._write, thread_sensitive=True)(self._active_jobs())

    async def stop(self) -> None:
        """Stop beating and mark the row stopped (a clean shutdown)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await sync_to_async(self._mark_stopped, thread_sensitive=True)()
        except Exception:
            logger.exception("could not mark the worker heartbeat stopped")

    async def _loop(self) -> None:
        while True:
            if self._connected():
                try:
                    await self.beat()
                except Exception as exc:  # the database may be briefly away; keep beating
                    logger.warning("worker heartbeat not written: %s", exc)
            await asyncio.sleep(self.interval)

    def _write(self, active_jobs: int) -> None:
        close_old_connections()
        now = timezone.now()
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "agent_name": self.agent_name,
                "host": self.host,
                "pid": self.pid,
                "last_seen": now,
                "stopped_at": None,
                "active_jobs": max(0, int(active_jobs)),
            },
            create_defaults={
                "agent_name": self.agent_name,
                "host": self.host,
                "pid": self.pid,
                "started_at": self.started_at,
                "last_seen": now,
                "active_jobs": max(0, int(active_jobs)),
            },
        )

    def _mark_stopped(self) -> None:
        close_old_connections()
        now = timezone.now()
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(
            stopped_at=now, last_seen=now, active_jobs=0
        )
