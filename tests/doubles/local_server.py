"""A base for the small aiohttp servers tests start on 127.0.0.1 (a free port, stopped on exit)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class LocalServer:
    """``async with Subclass() as server``: serves ``add_routes`` on 127.0.0.1.

    ``server.url`` is ``http://127.0.0.1:<port>`` (``ws://`` when ``scheme = "ws"``).
    """

    scheme = "http"

    def __init__(self) -> None:
        self.url = ""
        self.port = 0
        self._runner: web.AppRunner | None = None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    async def before_close(self) -> None:
        """Release anything a handler may still wait on."""

    #: aiohttp middlewares of the app, and keyword arguments of its ``AppRunner``.
    middlewares: tuple[Any, ...] = ()
    runner_options: dict[str, Any] = {}

    async def __aenter__(self) -> Any:
        app = web.Application(middlewares=list(self.middlewares))
        self.add_routes(app.router)
        self._runner = web.AppRunner(app, **self.runner_options)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.before_close()
        assert self._runner is not None
        await self._runner.cleanup()
