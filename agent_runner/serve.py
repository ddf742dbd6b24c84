"""Running LiveKit's ``AgentServer`` through its public surface.

``run_voice_agent dev|start`` runs the server with ``AgentServer.run()``, ``drain()`` and
``aclose()`` on an event loop of its own, as LiveKit's CLI does; ``console`` goes through
``livekit.agents.cli.run_app`` (LiveKit's deprecated rich console, see the README's
"Console" section for the way off it); ``download-files`` is ``python -m livekit.agents
download-files``. What has no public equivalent lives in ``agent_runner.livekit_private``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livekit.agents import AgentServer
    from livekit.agents.cli.proto import CliArgs

logger = logging.getLogger("agent_runner")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(server: AgentServer, args: CliArgs) -> None:
    """Run ``server`` until SIGINT/SIGTERM, then drain (in ``start``) and close it.

    The first signal starts the shutdown on the loop (running conversations get the drain
    timeout to finish); a second one exits at once.
    """
    from livekit.agents.cli.log import setup_logging

    setup_logging(args.log_level, devmode=args.dev or args.log_format == "colored", console=False)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = loop.create_future()
    signalled = False

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        nonlocal signalled
        if signalled:
            logger.warning("Second stop signal: exiting without waiting for conversations.")
            os._exit(1)
        signalled = True
        loop.call_soon_threadsafe(request_stop)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        loop.run_until_complete(_run_until_stopped(server, stop, dev=args.dev))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _close_loop(loop)


async def _run_until_stopped(server: AgentServer, stop: asyncio.Future[None], *, dev: bool) -> None:
    running = asyncio.create_task(server.run(devmode=dev), name="voice_widget_worker")
    await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
    if running.done() and not running.cancelled() and running.exception() is not None:
        logger.error("The worker failed.", exc_info=running.exception())
    if not dev:
        try:
            await server.drain()
        except TimeoutError:
            logger.warning("The drain timeout passed with conversations running; closing them.")
    await server.aclose()
    if not running.done():
        await asyncio.wait({running}, timeout=5)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def run_audio_console(server: AgentServer, *, log_level: str) -> None:
    """Talk to ``server``'s agent with the terminal's microphone and speaker, through
    LiveKit's public (deprecated) ``cli.run_app`` and its ``console`` command."""
    import warnings

    from livekit.agents import cli

    argv = sys.argv
    sys.argv = ["run_voice_agent", "console", "--log-level", log_level]
    try:
        with warnings.catch_warnings():
            # Said once in LiveKit's own console banner; the README says what comes next.
            warnings.filterwarnings("ignore", "the built-in Python CLI is deprecated")
            cli.run_app(server)
    except SystemExit as exc:  # the CLI (typer) always exits; only a failure matters
        if exc.code not in (None, 0):
            raise
    finally:
        sys.argv = argv


def download_plugin_files() -> int:
    """``python -m livekit.agents download-files``: every installed plugin's model files.
    Returns its exit status."""
    from livekit.agents.__main__ import main

    return main(["download-files"])
