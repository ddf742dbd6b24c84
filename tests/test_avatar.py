"""The Beyond Presence avatar against a local stand-in of its HTTP API on 127.0.0.1."""

import asyncio
import dataclasses
import socket

import pytest

pytest.importorskip("livekit.agents")

from aiohttp import web  # noqa: E402
from livekit import api  # noqa: E402
from livekit.agents import AgentSession  # noqa: E402
from livekit.agents.utils import http_context  # noqa: E402
from livekit.agents.voice.avatar import DataStreamAudioOutput  # noqa: E402

from agent_runner.avatar import AVATAR_ATTRIBUTE, start_avatar  # noqa: E402
from agent_runner.pipeline import build_session_plan  # noqa: E402
from tests.doubles.livekit_room import RoomDouble, job_context  # noqa: E402
from tests.doubles.local_server import LocalServer  # noqa: E402
from tests.factories import persona_fields  # noqa: E402
from voice_widget.models import Persona  # noqa: E402
from voice_widget.persona_settings import PersonaSettings  # noqa: E402

pytestmark = pytest.mark.agent

AVATAR_ID = "b9be11b8-89fb-4227-8f86-4a881393cbdb"
AVATAR_IDENTITY = "bey-avatar-agent"


class BeyApiDouble(LocalServer):
    """``POST /v1/sessions`` like api.bey.dev: on success the avatar joins the room."""

    def __init__(self, room, status=201, body='{"id": "sess_1"}', join=True, hang=False):
        super().__init__()
        self.room, self.status, self.body, self.join = room, status, body, join
        self.hang = hang
        self._released = asyncio.Event()
        self.requests = []

    def add_routes(self, router):
        router.add_post("/v1/sessions", self._sessions)

    async def before_close(self):
        self._released.set()

    async def _sessions(self, request):
        self.requests.append({"headers": dict(request.headers), "json": await request.json()})
        if self.hang:  # accept the request, then answer only when the test is over
            await self._released.wait()
        if self.status < 300 and self.join:
            asyncio.get_running_loop().call_later(0.01, self.room.join, AVATAR_IDENTITY)
        return web.Response(status=self.status, text=self.body, content_type="application/json")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bey_key(monkeypatch):
    for name in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY"):
        monkeypatch.setenv(name, "placeholder")
    monkeypatch.setenv("BEY_API_KEY", "bey-test-key")


def avatar_plan(monkeypatch, api_url, **avatar_overrides):
    monkeypatch.setenv("BEY_API_URL", api_url)
    persona = Persona(**persona_fields(avatar_provider="bey", avatar_id=AVATAR_ID))
    persona.full_clean(validate_unique=False, validate_constraints=False)
    plan = build_session_plan(PersonaSettings.from_persona(persona), vad=None)
    fast = {"retry_interval": 0.01, "join_timeout": 2.0, "timeout": 2.0}
    plan.avatar = dataclasses.replace(plan.avatar, **{**fast, **avatar_overrides})
    return plan


def avatar_states(room):
    return [change[AVATAR_ATTRIBUTE] for change in room.local_participant.attribute_history]


async def test_avatar_starts_before_the_session_and_takes_the_agents_audio(
    monkeypatch, settings, bey_key
):
    room = RoomDouble(name="vw-room-1", agent_identity="agent-AJ_1")
    session = AgentSession(vad=None, turn_handling={"turn_detection": "manual"})
    async with BeyApiDouble(room) as bey_api, http_context.open():
        plan = avatar_plan(monkeypatch, bey_api.url)
        with job_context(room) as job:
            reason = await start_avatar(plan, session, room)

    assert reason is None
    assert avatar_states(room) == ["starting", "ready"]
    # The session has not started (no greeting yet), and its speech already goes to the avatar.
    assert session._started is False
    audio = session.output.audio
    assert isinstance(audio, DataStreamAudioOutput)
    assert audio._destination_identity == AVATAR_IDENTITY
    assert AVATAR_IDENTITY in room.remote_participants
    assert job.shutdown_callbacks  # the avatar leaves when the job ends

    [request] = bey_api.requests
    assert request["headers"]["x-api-key"] == "bey-test-key"
    body = request["json"]
    assert body["avatar_id"] == AVATAR_ID
    assert body["transport"] == "livekit"
    assert body["url"] == settings.VOICE_WIDGET["LIVEKIT_URL"]
    claims = api.TokenVerifier(
        settings.VOICE_WIDGET["LIVEKIT_API_KEY"], settings.VOICE_WIDGET["LIVEKIT_API_SECRET"]
    ).verify(body["token"])
    assert claims.identity == AVATAR_IDENTITY
    assert claims.video.room == "vw-room-1"
    assert claims.video.room_join is True
    assert claims.attributes["lk.publish_on_behalf"] == "agent-AJ_1"


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (404, '{"detail": "Avatar not found"}', "HTTP 404"),
        (401, '{"detail": "Invalid API key"}', "Invalid API key"),
        (503, "upstream down", "HTTP 503"),
    ],
)
async def test_error_response_falls_back_to_voice_only(
    monkeypatch, bey_key, status, body, fragment
):
    room = RoomDouble()
    session = AgentSession(vad=None, turn_handling={"turn_detection": "manual"})
    async with BeyApiDouble(room, status=status, body=body) as bey_api, http_context.open():
        plan = avatar_plan(monkeypatch, bey_api.url)
        with job_context(room):
            reason = await start_avatar(plan, session, room)

    assert fragment in reason
    assert "Beyond Presence refused" in reason
    assert avatar_states(room) == ["starting", "failed"]
    assert session.output.audio is None  # the room's own audio output takes over at start
    expected_calls = 2 if status >= 500 else 1  # a 5xx is retried once, a 4xx is not
    assert len(bey_api.requests) == expected_calls


async def test_unreachable_service_falls_back_to_voice_only(monkeypatch, bey_key):
    room = RoomDouble()
    session = AgentSession(vad=None, turn_handling={"turn_detection": "manual"})
    url = f"http://127.0.0.1:{free_port()}"
    async with http_context.open():
        plan = avatar_plan(monkeypatch, url)
        with job_context(room):
            reason = await start_avatar(plan, session, room)

    assert reason == f"Beyond Presence could not be reached at {url}."
    assert avatar_states(room) == ["starting", "failed"]
    assert session.output.audio is None


async def test_service_that_hangs_falls_back_to_voice_only(monkeypatch, bey_key):
    room = RoomDouble()
    session = AgentSession(vad=None, turn_handling={"turn_detection": "manual"})
    async with BeyApiDouble(room, hang=True) as bey_api, http_context.open():
        plan = avatar_plan(monkeypatch, bey_api.url, start_timeout=0.3)
        with job_context(room):
            reason = await start_avatar(plan, session, room)

    assert reason == "Beyond Presence did not answer within 0.3 s."
    assert avatar_states(room) == ["starting", "failed"]
    assert session.output.audio is None


async def test_avatar_that_never_joins_falls_back_and_gives_the_audio_back(monkeypatch, bey_key):
    room = RoomDouble()
    session = AgentSession(vad=None, turn_handling={"turn_detection": "manual"})
    async with BeyApiDouble(room, join=False) as bey_api, http_context.open():
        plan = avatar_plan(monkeypatch, bey_api.url, join_timeout=0.2)
        with job_context(room):
            reason = await start_avatar(plan, session, room)

    assert reason == "The Beyond Presence avatar did not join the room within 0.2 s."
    assert avatar_states(room) == ["starting", "failed"]
    assert session.output.audio is None


async def test_missing_key_falls_back_without_calling_the_service(monkeypatch, bey_key):
    monkeypatch.delenv("BEY_API_KEY")
    room = RoomDouble()
    session = AgentSession(vad=None, turn_handling={"turn_detection": "manual"})
    async with BeyApiDouble(room) as bey_api, http_context.open():
        plan = avatar_plan(monkeypatch, bey_api.url)
        with job_context(room):
            reason = await start_avatar(plan, session, room)

    assert reason == "BEY_API_KEY is not set on the worker."
    assert avatar_states(room) == ["starting", "failed"]
    assert bey_api.requests == []


async def test_no_avatar_does_nothing(monkeypatch, bey_key):
    room = RoomDouble()
    session = AgentSession(vad=None, turn_handling={"turn_detection": "manual"})
    persona = Persona(**persona_fields())
    plan = build_session_plan(PersonaSettings.from_persona(persona), vad=None)
    assert await start_avatar(plan, session, room) is None
    assert room.local_participant.attribute_history == []
    assert session.output.audio is None
