"""Run an async test server (a ``LocalServer`` double) on its own event loop in a thread.

For synchronous tests (pytest-django's ``live_server``, Playwright's sync API), whose own
thread must not run an event loop::

    with serve_in_thread(OpenAIServerDouble(transcript="Hi")) as openai:
        worker_env["OPENAI_BASE_URL"] = openai.base_url
        ...
        assert openai.transcriptions  # the double's records, read from the test's thread

``serve_in_thread(server).call(coro_fn, *args)`` runs a coroutine on the server's loop
(e.g. to await one of its ``asyncio.Event``s) and returns its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")


class ThreadedServer(Generic[S]):
    def __init__(self, server: S, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float = 60) -> T:
        """Run ``fn(*args)`` on the server's loop; its result (or exception)."""
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(timeout)


@contextlib.contextmanager
def serve_in_thread(server: S, *, timeout: float = 30) -> Iterator[S]:
    """``async with server`` on a private loop in a daemon thread, for the block's duration.
    Yields the server itself; ``server.in_thread`` is the ``ThreadedServer`` handle."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"{type(server).__name__}", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(timeout)  # type: ignore[attr-defined]
        server.in_thread = ThreadedServer(server, loop)  # type: ignore[attr-defined]
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(
                server.__aexit__(None, None, None),  # type: ignore[attr-defined]
                loop,
            ).result(timeout)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
