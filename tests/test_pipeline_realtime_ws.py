"""The planned Azure OpenAI Realtime client opens its WebSocket with the persona's settings.

A WebSocket server on 127.0.0.1 stands in for the Azure resource (the persona's endpoint
points at it) and records the ``session.update`` the real client sends first.
"""

import asyncio
import json

import pytest

pytest.importorskip("livekit.agents")

from aiohttp import WSMsgType, web  # noqa: E402
from livekit.agents.utils import http_context  # noqa: E402

from agent_runner.pipeline import build_session_plan  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from tests.doubles.local_server import LocalServer  # noqa: E402

pytestmark = pytest.mark.agent

keys, vad, settings_for = shared.keys, shared.vad, shared.settings_for


class AzureRealtimeServerDouble(LocalServer):
    def __init__(self):
        super().__init__()
        self.connections = []
        self.first_event = asyncio.get_running_loop().create_future()

    def add_routes(self, router):
        router.add_get("/{tail:.*}", self._realtime)

    async def _realtime(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(
            {"path": request.path, "query": dict(request.query), "headers": dict(request.headers)}
        )
        async for message in ws:
            if message.type == WSMsgType.TEXT and not self.first_event.done():
                self.first_event.set_result(json.loads(message.data))
        return ws


async def test_azure_realtime_session_sends_the_personas_voice_and_vad(keys, vad, monkeypatch):
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    async with AzureRealtimeServerDouble() as server, http_context.open():
        persona = settings_for(
            pipeline_kind="realtime",
            realtime_provider="azure_openai",
            realtime_model="gpt-realtime",
            azure_endpoint=server.url,
            azure_deployment="linden-realtime",
            realtime_voice="marin",
            turn_detection="realtime_llm",
            realtime_vad_threshold=0.6,
            realtime_prefix_padding_ms=500,
            realtime_silence_duration_ms=1800,
        )
        model = build_session_plan(persona, vad=vad).session_kwargs["llm"]
        session = model.session()
        try:
            event = await asyncio.wait_for(server.first_event, timeout=5)
        finally:
            await session.aclose()
            await model.aclose()

    [connection] = server.connections
    assert connection["path"] == "/openai/v1/realtime"
    assert connection["query"]["model"] == "linden-realtime"
    assert connection["headers"]["api-key"] == keys["AZURE_OPENAI_API_KEY"]
    assert event["type"] == "session.update"
    audio = event["session"]["audio"]
    assert audio["output"]["voice"] == "marin"
    assert audio["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.6,
        "prefix_padding_ms": 500,
        "silence_duration_ms": 1800,
        "create_response": True,
        "interrupt_response": True,
    }
