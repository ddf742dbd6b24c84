"""``VoiceWidgetServer``: LiveKit's ``AgentServer`` plus what a Django deployment needs.

- the heartbeat row the web side reads, written while the worker is registered and
  marked stopped on a clean shutdown;
- one clear log line when LiveKit cannot be reached (instead of a traceback per retry),
  and a clean exit when it gives up;
- turn-detector models that were never downloaded do not stop the worker: their
  inference runners are left out, and a warning names the command that downloads them.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import AgentServer

from .heartbeat import Heartbeat
from .worker import DOWNLOAD_FILES_COMMAND

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
    def __init__(self, *, heartbeat: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.heartbeat: Heartbeat | None = None
        self._heartbeat_enabled = heartbeat
        self.connection_failed = False
        self._reporter = _ConnectionFailureReporter(self)
        self.on("worker_registered", self._on_registered)

    @property
    def livekit_url(self) -> str:
        return self._ws_url

    @property
    def agent_name(self) -> str:
        return self._agent_name

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
                    connected=lambda: not getattr(self, "_connecting", False),
                )
            self.heartbeat.start()

    async def run(self, *, devmode: bool = False, unregistered: bool = False) -> None:
        logger.info(
            "Starting the voice agent worker (%s) as agent %r for %s",
            "dev" if devmode else "start",
            self.agent_name,
            self.livekit_url,
        )
        drop_unavailable_turn_detectors()
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


def drop_unavailable_turn_detectors() -> list[str]:
    """Leave out turn-detector inference runners whose model files are not on disk.

    Otherwise the worker's inference process fails to start and takes the worker down.
    Personas that ask for the turn-detector model then fail with a reason that names
    the download command (see ``worker.describe_setup_error``). Returns what was dropped.
    """
    from livekit.agents.inference_runner import _InferenceRunner

    dropped = []
    for method, runner in list(_InferenceRunner.registered_runners.items()):
        if not runner.__module__.startswith("livekit.plugins.turn_detector"):
            continue
        if not _turn_detector_files_present(runner):
            del _InferenceRunner.registered_runners[method]
            dropped.append(method)
    if dropped:
        logger.warning(
            "Turn-detector model files are not downloaded, so personas that use the "
            "turn-detector model will fail. Download them with: %s",
            DOWNLOAD_FILES_COMMAND,
        )
    return dropped


def _turn_detector_files_present(runner: Any) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
        from livekit.plugins.turn_detector.models import HG_MODEL, ONNX_FILENAME

        revision = runner.model_revision()
        paths = [
            try_to_load_from_cache(HG_MODEL, f"onnx/{ONNX_FILENAME}", revision=revision),
            try_to_load_from_cache(HG_MODEL, "languages.json", revision=revision),
        ]
    except Exception:
        return False
    return all(isinstance(path, str) for path in paths)
