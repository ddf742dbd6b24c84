"""What every job process needs, done once per process image: Django set up, the worker's
modules and the provider plugins imported, the Silero VAD loaded.

The worker names this module in LiveKit's ``preload_modules``, so on Linux (the
``forkserver`` start method) it is imported once in the forkserver, before LiveKit freezes
the objects there (its preload freeze), and every job process forked from it shares the
result copy-on-write instead of paying a second or more and tens of MB for its own copy.
Under ``spawn`` (macOS, Windows) each job process imports it in ``prewarm``.

Nothing here opens a connection or starts a thread (a forked child would inherit neither
usefully): Django opens its database connections (and PostgreSQL's connection pool, with
its threads) on first query, the plugins' clients on first use, and the VAD's ONNX session
runs on the calling thread. The plugins register on the importing process's main thread, as
LiveKit requires.

A failure (the settings module not importable from the forkserver's working directory, say)
is logged and left to ``prewarm``, which sets up what is missing in the job process itself.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger("agent_runner")

_vad: Any = None
#: The process where the warm-up ran: the forkserver's pid in the job processes forked from it.
warmed_up_in: int | None = None


def shared_vad() -> Any:
    """The process's Silero VAD (loaded on first call: in the forkserver, once for all)."""
    global _vad
    if _vad is None:
        from livekit.plugins import silero

        _vad = silero.VAD.load()
    return _vad


def warm_up() -> None:
    global warmed_up_in
    from .worker import close_database_connections, ensure_django

    ensure_django()
    # The job's modules: the entrypoint imports them when a conversation starts.
    from . import conversation, pipeline, protocol  # noqa: F401

    shared_vad()
    # Nothing above should have queried; if something did, no child may inherit the socket,
    # nor a connection pool whose threads it would not have.
    close_database_connections()
    warmed_up_in = os.getpid()


try:
    warm_up()
except Exception:
    logger.warning("the job processes' shared warm-up failed; each does its own", exc_info=True)
