"""``VoiceWidgetServer``: LiveKit's ``AgentServer`` plus what a Django deployment needs.

- the heartbeat row the web side reads, written while the worker is registered and
  marked stopped on a clean shutdown;
- one clear log line when LiveKit cannot be reached (instead of a traceback per retry),
  and a clean exit when it gives up.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import AgentServer

from .heartbeat import Heartbeat
from .livekit_private import server_is_connecting

logger = logging.getLogger("agent_runner")


class _ConnectionFailureReporter(logging.Filter):
    """Turns livekit-agents' "failed to connect" retries into one clear error per outage."""

    def __init__(self, server: VoiceWidgetServer) -> None:
        super().__init__()
        self.server = server
        self.reported = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.reported and record.getMessage().startswith("failed to connect to livekit"):
            self.reported = True
            error = getattr(record, "error", None)
            logger.error(
                "Cannot connect to the LiveKit server at %s (%s). Is it running, and do "
                "VOICE_WIDGET['LIVEKIT_URL'] / LIVEKIT_URL, the API key and secret match it? "
                "Retrying.",
                self.server.livekit_url,
                error or "no details",
            )
        return True


class VoiceWidgetServer(AgentServer):
    def __init__(self, *, agent_name: str, heartbeat: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: What the server was given (``AgentServer`` keeps both private).
        self.livekit_url: str = kwargs.get("ws_url") or ""
        self.agent_name = agent_name
        self.heartbeat: Heartbeat | None = None
        self._heartbeat_enabled = heartbeat
        self.connection_failed = False
        self._reporter = _ConnectionFailureReporter(self)
        self.on("worker_registered", self._on_registered)

    def _on_registered(self, worker_id: str, server_info: Any) -> None:
        self._reporter.reported = False
        logger.info(
            "Registered with LiveKit at %s as agent %r (worker %s)",
            self.livekit_url,
            self.agent_name,
            worker_id,
        )
        if self._heartbeat_enabled:
            if self.heartbeat is None:
                self.heartbeat = Heartbeat(
                    agent_name=self.agent_name,
                    active_jobs=lambda: len(self.active_jobs),
                    # A worker reconnecting to LiveKit cannot take jobs: let its row go stale.
                    connected=lambda: not server_is_connecting(self),
                )
            self.heartbeat.start()

    async def run(self, *, devmode: bool = False, unregistered: bool = False) -> None:
        logger.info(
            "Starting the voice agent worker (%s) as agent %r for %s",
            "dev" if devmode else "start",
            self.agent_name,
            self.livekit_url,
        )
        agents_logger = logging.getLogger("livekit.agents")
        agents_logger.addFilter(self._reporter)
        try:
            await super().run(devmode=devmode, unregistered=unregistered)
        except RuntimeError as exc:
            if "failed to connect to livekit" not in str(exc):
                raise
            self.connection_failed = True
            logger.error("Giving up: the LiveKit server at %s is unreachable.", self.livekit_url)
        finally:
            agents_logger.removeFilter(self._reporter)

    async def aclose(self) -> None:
        await super().aclose()
        if self.heartbeat is not None:
            await self.heartbeat.stop()
