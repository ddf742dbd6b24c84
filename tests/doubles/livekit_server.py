"""``LiveKitWorkerServerDouble``: the worker-registration side of a LiveKit server.

It speaks just enough of LiveKit's agent protocol (a websocket at ``/agent`` carrying
protobuf ``WorkerMessage`` / ``ServerMessage``) to accept a worker's registration and
record what it sent: the agent name, and the bearer token signed with the API key/secret.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web
from livekit.protocol import agent

from tests.doubles.local_server import LocalServer


class LiveKitWorkerServerDouble(LocalServer):
    scheme = "ws"

    def __init__(self) -> None:
        super().__init__()
        self.registrations: list[dict[str, Any]] = []
        self.registered = asyncio.Event()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/agent", self.agent_socket)

    async def agent_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type != WSMsgType.BINARY:
                continue
            worker_message = agent.WorkerMessage()
            worker_message.ParseFromString(message.data)
            if worker_message.WhichOneof("message") == "register":
                self.registrations.append(
                    {
                        "agent_name": worker_message.register.agent_name,
                        "authorization": request.headers.get("Authorization", ""),
                    }
                )
                response = agent.ServerMessage()
                response.register.worker_id = f"AW_double_{len(self.registrations)}"
                response.register.server_info.version = "double"
                await ws.send_bytes(response.SerializeToString())
                self.registered.set()
        return ws
