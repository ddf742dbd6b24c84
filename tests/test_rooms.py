"""voice_widget.rooms: livekit-api's RoomService and AgentDispatchService over real HTTP."""

import json
import logging
import time

import pytest
from livekit.api import (
    AgentDispatch,
    CreateAgentDispatchRequest,
    DeleteRoomRequest,
    DeleteRoomResponse,
    ServerError,
)

from tests.api_support import FakeLiveKitServer, unused_local_port, use_livekit_url, verifier
from tests.doubles.stalled_server import StalledServer
from voice_widget import rooms
from voice_widget.rooms import delete_room, dispatch_agent

#: Deadline the stalled-server tests give our calls, and what they allow beyond it.
SHORT_DEADLINE = 0.5
MARGIN = 1.0


@pytest.fixture
def livekit(settings):
    server = FakeLiveKitServer().start()
    use_livekit_url(settings, server.url)
    yield server
    server.stop()


def test_delete_room_calls_room_service_with_a_room_create_token(livekit):
    livekit.body = DeleteRoomResponse().SerializeToString()
    assert delete_room("vw-abc") is True
    (request,) = livekit.requests
    assert request.path == "/twirp/livekit.RoomService/DeleteRoom"
    assert DeleteRoomRequest.FromString(request.body).room == "vw-abc"
    grants = verifier().verify(request.headers["authorization"].removeprefix("Bearer ")).video
    assert grants.room_create is True


def test_delete_room_reports_a_server_error_as_false_and_logs_it(livekit, caplog):
    livekit.status = 500
    livekit.content_type = "application/json"
    livekit.body = json.dumps({"code": "internal", "msg": "db down"}).encode()
    with caplog.at_level(logging.WARNING, logger="voice_widget.rooms"):
        assert delete_room("vw-abc") is False
    assert "LiveKit answered 500 internal" in caplog.text


def test_delete_room_of_a_room_livekit_does_not_know_is_false(livekit):
    livekit.status = 404
    livekit.content_type = "application/json"
    livekit.body = json.dumps({"code": "not_found", "msg": "room not found"}).encode()
    assert delete_room("vw-gone") is False


def test_delete_room_with_no_server_listening_is_false(settings, caplog):
    use_livekit_url(settings, f"http://127.0.0.1:{unused_local_port()}")
    with caplog.at_level(logging.WARNING, logger="voice_widget.rooms"):
        assert delete_room("vw-abc") is False
    assert "could not delete LiveKit room vw-abc" in caplog.text


def test_delete_room_without_livekit_configured_sends_nothing(settings, livekit_env_clear):
    settings.DEBUG = False
    settings.VOICE_WIDGET = {}
    assert delete_room("vw-abc") is False


def test_dispatch_agent_into_an_existing_room_uses_agent_dispatch_service(livekit, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "AGENT_NAME": "shop-agent"}
    livekit.body = AgentDispatch(
        id="AD_1", agent_name="shop-agent", room="vw-abc"
    ).SerializeToString()
    dispatch = dispatch_agent("vw-abc", "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    assert dispatch.id == "AD_1"
    (request,) = livekit.requests
    assert request.path == "/twirp/livekit.AgentDispatchService/CreateDispatch"
    sent = CreateAgentDispatchRequest.FromString(request.body)
    assert sent.agent_name == "shop-agent"
    assert sent.room == "vw-abc"
    assert json.loads(sent.metadata) == {"conversation": "1b4e28ba-2fa1-41d2-883f-0016d3cca427"}
    grants = verifier().verify(request.headers["authorization"].removeprefix("Bearer ")).video
    assert grants.room_admin is True and grants.room == "vw-abc"


def test_dispatch_agent_raises_livekits_refusal_to_the_caller(livekit):
    livekit.status = 404
    livekit.content_type = "application/json"
    livekit.body = json.dumps({"code": "not_found", "msg": "room not found"}).encode()
    with pytest.raises(ServerError) as excinfo:
        dispatch_agent("vw-gone", "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    assert excinfo.value.status == 404


@pytest.fixture
def stalled_livekit(settings, monkeypatch):
    monkeypatch.setattr(rooms, "API_TIMEOUT", SHORT_DEADLINE)
    with StalledServer() as server:
        use_livekit_url(settings, server.url)
        yield server


def test_delete_room_gives_up_on_a_stalled_livekit_after_its_deadline(stalled_livekit, caplog):
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="voice_widget.rooms"):
        assert delete_room("vw-abc") is False
    assert time.monotonic() - started < SHORT_DEADLINE + MARGIN
    assert stalled_livekit.connections >= 1
    assert "could not delete LiveKit room vw-abc: no answer within" in caplog.text


def test_dispatch_agent_gives_up_on_a_stalled_livekit_after_its_deadline(stalled_livekit, caplog):
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="voice_widget.rooms"),
        pytest.raises(TimeoutError),
    ):
        dispatch_agent("vw-abc", "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    assert time.monotonic() - started < SHORT_DEADLINE + MARGIN
    assert "LiveKit did not answer the agent dispatch into room vw-abc" in caplog.text
