"""POST /voice-widget/api/sessions/<id>/end/: the visitor ends a conversation (sendBeacon)."""

import json
import logging
import time

import pytest
from django.test import Client
from livekit.api import DeleteRoomRequest, DeleteRoomResponse

from tests.api_support import (
    FakeLiveKitServer,
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
    post_json,
    unused_local_port,
    use_livekit_url,
    verifier,
)
from tests.doubles.stalled_server import StalledServer
from tests.factories import make_conversation, make_persona
from voice_widget import rooms
from voice_widget.api import views
from voice_widget.lifecycle import end_conversation
from voice_widget.models import Conversation, ConversationStatus, EndReason
from voice_widget.signals import conversation_ended

# The session endpoint opens conversations only while a worker serves them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker_alive")]

DELETE_ROOM_PATH = "/twirp/livekit.RoomService/DeleteRoom"


@pytest.fixture
def livekit(settings):
    server = FakeLiveKitServer(body=DeleteRoomResponse().SerializeToString()).start()
    use_livekit_url(settings, server.url)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def room_deletions(monkeypatch):
    """The threads the end endpoint starts to delete rooms; ``join()`` waits for them."""

    class Deletions(list):
        def join(self):
            for thread in self:
                thread.join(timeout=10)

    deletions = Deletions()

    def record(room_name):
        thread = rooms.delete_room_in_background(room_name)
        deletions.append(thread)
        return thread

    monkeypatch.setattr(views, "delete_room_in_background", record)
    yield deletions
    deletions.join()


@pytest.fixture
def ended_signals():
    received = []

    def receiver(sender, conversation, reason, **kwargs):
        received.append((conversation.pk, reason))

    conversation_ended.connect(receiver, dispatch_uid="test_api_end")
    yield received
    conversation_ended.disconnect(dispatch_uid="test_api_end")


@pytest.fixture
def session(client, livekit):
    """A conversation created through the API: its id, end URL and end key."""
    make_persona(slug="ben", allowed_origins="https://partner.example.com")
    body = post_json(client, "/voice-widget/api/sessions/", {"persona": "ben"}).json()
    return body


def refresh(session):
    return Conversation.objects.get(pk=session["conversation"])


def test_end_with_json_body_ends_the_conversation_as_client_end(client, session, ended_signals):
    response = post_json(client, session["end_url"], {"end_key": session["end_key"]})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "conversation": session["conversation"],
        "status": "ended",
        "end_reason": "client_end",
    }
    assert response["Cache-Control"] == "no-store"
    conversation = refresh(session)
    assert conversation.status == ConversationStatus.ENDED
    assert conversation.end_reason == EndReason.CLIENT_END
    assert conversation.ended_at is not None
    assert ended_signals == [(conversation.pk, EndReason.CLIENT_END)]


def test_end_accepts_the_text_plain_body_send_beacon_sends(client, session):
    response = client.post(
        session["end_url"],
        json.dumps({"end_key": session["end_key"]}),
        content_type="text/plain;charset=UTF-8",
    )
    assert response.status_code == 200, response.content
    assert refresh(session).end_reason == EndReason.CLIENT_END


def test_end_accepts_a_urlencoded_form(client, session):
    response = client.post(
        session["end_url"],
        f"end_key={session['end_key']}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    assert refresh(session).status == ConversationStatus.ENDED


def test_end_accepts_multipart_form_data_of_a_form_data_beacon(client, session):
    response = client.post(session["end_url"], {"end_key": session["end_key"]})  # multipart
    assert response.status_code == 200, response.content
    assert refresh(session).status == ConversationStatus.ENDED


def _multipart(*fields):
    parts = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % field
        for field in fields
    )
    return parts + b"--b--\r\n"


def test_multipart_with_more_fields_than_django_allows_is_400_with_a_detail(
    client, session, settings
):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = [(b"end_key", session["end_key"].encode())]
    fields += [(b"f%d" % i, b"x") for i in range(20)]
    response = client.post(
        session["end_url"], _multipart(*fields), content_type="multipart/form-data; boundary=b"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert "more fields" in response.json()["detail"]
    assert refresh(session).status != ConversationStatus.ENDED


def test_multipart_with_a_field_over_djangos_limit_is_413_with_a_detail(client, session, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = _multipart((b"end_key", session["end_key"].encode()), (b"pad", b"x" * 2000))
    response = client.post(session["end_url"], body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert response.json()["detail"]
    assert refresh(session).status != ConversationStatus.ENDED


def test_malformed_multipart_is_400_with_a_detail(client, session):
    response = client.post(session["end_url"], b"x", content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert response.json()["detail"]


def test_end_deletes_the_livekit_room_through_room_service(
    client, session, livekit, room_deletions
):
    post_json(client, session["end_url"], {"end_key": session["end_key"]})
    room_deletions.join()
    assert [request.path for request in livekit.requests] == [DELETE_ROOM_PATH]
    request = livekit.requests[0]
    assert DeleteRoomRequest.FromString(request.body).room == session["room_name"]
    token = request.headers["authorization"].removeprefix("Bearer ")
    assert verifier().verify(token).video.room_create is True


def test_end_is_idempotent_and_deletes_the_room_once(
    client, session, livekit, ended_signals, room_deletions
):
    first = post_json(client, session["end_url"], {"end_key": session["end_key"]})
    ended_at = refresh(session).ended_at
    second = post_json(client, session["end_url"], {"end_key": session["end_key"]})
    room_deletions.join()
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert refresh(session).ended_at == ended_at
    assert len(ended_signals) == 1
    assert len(livekit.requests) == 1


def test_end_of_a_conversation_the_agent_ended_keeps_the_agents_reason(client, session, livekit):
    Conversation.objects.filter(pk=session["conversation"]).update(
        status=ConversationStatus.ENDED, end_reason=EndReason.AGENT_END
    )
    response = post_json(client, session["end_url"], {"end_key": session["end_key"]})
    assert response.status_code == 200
    assert response.json()["end_reason"] == "agent_end"
    assert livekit.requests == []


def test_wrong_end_key_is_403_and_changes_nothing(client, session, livekit, ended_signals):
    response = post_json(client, session["end_url"], {"end_key": "not-the-key"})
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_end_key"
    assert refresh(session).status == ConversationStatus.CREATED
    assert ended_signals == [] and livekit.requests == []


def test_end_key_of_another_conversation_is_refused(client, session, livekit):
    other = post_json(client, "/voice-widget/api/sessions/", {"persona": "ben"}).json()
    response = post_json(client, session["end_url"], {"end_key": other["end_key"]})
    assert response.status_code == 403
    assert refresh(session).status == ConversationStatus.CREATED


def test_conversation_without_an_end_key_cannot_be_ended_from_the_browser(client, livekit):
    conversation = make_conversation()
    response = post_json(
        client, f"/voice-widget/api/sessions/{conversation.pk}/end/", {"end_key": ""}
    )
    assert response.status_code == 400
    response = post_json(
        client, f"/voice-widget/api/sessions/{conversation.pk}/end/", {"end_key": "guess"}
    )
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.is_open


@pytest.mark.parametrize("body", [{}, {"end_key": 42}, ["key"]])
def test_end_without_a_usable_key_is_400(client, session, body):
    response = post_json(client, session["end_url"], body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert refresh(session).is_open


def test_end_of_an_unknown_conversation_is_404(client, livekit):
    response = post_json(
        client,
        "/voice-widget/api/sessions/00000000-0000-4000-8000-000000000000/end/",
        {"end_key": "whatever"},
    )
    assert response.status_code == 404
    assert response.json()["error"] == "conversation_not_found"


def test_room_service_answering_500_does_not_reach_the_visitor(
    client, session, livekit, caplog, room_deletions
):
    livekit.status = 500
    livekit.content_type = "application/json"
    livekit.body = json.dumps({"code": "internal", "msg": "boom: secret internals"}).encode()
    with caplog.at_level(logging.WARNING, logger="voice_widget.rooms"):
        response = post_json(client, session["end_url"], {"end_key": session["end_key"]})
        room_deletions.join()
    assert response.status_code == 200
    assert "boom" not in response.content.decode()
    assert refresh(session).status == ConversationStatus.ENDED
    assert [request.path for request in livekit.requests] == [DELETE_ROOM_PATH]
    assert any("could not delete LiveKit room" in message for message in caplog.messages)


def test_unreachable_livekit_server_does_not_reach_the_visitor(
    client, session, settings, caplog, room_deletions
):
    use_livekit_url(settings, f"http://127.0.0.1:{unused_local_port()}")
    with caplog.at_level(logging.WARNING, logger="voice_widget.rooms"):
        response = post_json(client, session["end_url"], {"end_key": session["end_key"]})
        room_deletions.join()
    assert response.status_code == 200
    assert response.json()["status"] == "ended"
    assert any("could not delete LiveKit room" in message for message in caplog.messages)


def test_end_answers_at_once_while_a_stalled_livekit_holds_the_room_deletion(
    client, session, settings, monkeypatch, caplog, room_deletions
):
    monkeypatch.setattr(rooms, "API_TIMEOUT", 3)
    with StalledServer() as stalled, caplog.at_level(logging.WARNING, logger="voice_widget.rooms"):
        use_livekit_url(settings, stalled.url)
        started = time.monotonic()
        response = post_json(client, session["end_url"], {"end_key": session["end_key"]})
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert response.json()["status"] == "ended"
        assert elapsed < 1.0
        room_deletions.join()
    assert any("no answer within 3 s" in message for message in caplog.messages)


def test_beacon_from_another_site_ends_with_the_key_alone(client, session):
    response = client.post(
        session["end_url"],
        json.dumps({"end_key": session["end_key"]}),
        content_type="text/plain;charset=UTF-8",
        HTTP_ORIGIN="https://not-listed.example",
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_logged_in_users_beacon_needs_no_csrf_token(session, django_user_model):
    beacon_client = Client(enforce_csrf_checks=True)
    beacon_client.force_login(django_user_model.objects.create_user("ann", password="x"))
    response = beacon_client.post(
        session["end_url"],
        json.dumps({"end_key": session["end_key"]}),
        content_type="text/plain;charset=UTF-8",
    )
    assert response.status_code == 200


def test_end_endpoint_is_not_throttled_by_the_session_rates(client, session, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "THROTTLE_RATES": {"anon": "1/minute"}}
    for _ in range(3):
        response = post_json(client, session["end_url"], {"end_key": session["end_key"]})
        assert response.status_code == 200


def test_a_closed_page_reports_participant_left(client, session):
    body = {"end_key": session["end_key"], "reason": "participant_left"}
    response = client.post(session["end_url"], json.dumps(body), content_type="text/plain")
    assert response.status_code == 200, response.content
    assert response.json()["end_reason"] == "participant_left"
    assert refresh(session).end_reason == EndReason.PARTICIPANT_LEFT


def test_the_browser_cannot_claim_an_ending_that_is_the_workers_to_record(client, session):
    body = {"end_key": session["end_key"], "reason": "max_duration"}
    response = post_json(client, session["end_url"], body)
    assert response.status_code == 400
    assert "reason" in response.json()["detail"]
    assert refresh(session).status == ConversationStatus.CREATED


def test_an_ending_on_record_is_kept_and_returned_to_the_late_end_request(client, session):
    end_conversation(session["conversation"], EndReason.MAX_DURATION)
    response = post_json(client, session["end_url"], {"end_key": session["end_key"]})
    assert response.json() == {
        "conversation": session["conversation"],
        "status": "ended",
        "end_reason": "max_duration",
    }
    assert refresh(session).end_reason == EndReason.MAX_DURATION


def test_status_tells_the_visitor_where_the_conversation_stands(client, session):
    status_url = session["status_url"]
    response = post_json(client, status_url, {"end_key": session["end_key"]})
    assert response.status_code == 200
    assert response.json() == {
        "conversation": session["conversation"],
        "status": "created",
        "end_reason": "",
    }
    end_conversation(session["conversation"], EndReason.ERROR, detail="internal", failed=True)
    body = post_json(client, status_url, {"end_key": session["end_key"]}).json()
    assert (body["status"], body["end_reason"]) == ("failed", "error")
    assert "detail" not in body  # the operator's detail stays in admin


def test_status_needs_the_end_key(client, session):
    response = post_json(client, session["status_url"], {"end_key": "not-the-key"})
    assert response.status_code == 403
    assert response.json()["detail"]
    assert post_json(client, session["status_url"], {}).status_code == 400


def test_a_widget_failure_is_recorded_as_failed_with_what_happened(client, session, ended_signals):
    body = {"end_key": session["end_key"], "reason": "error", "detail": "livekit_unreachable"}
    response = client.post(session["end_url"], json.dumps(body), content_type="text/plain")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "failed"
    assert response.json()["end_reason"] == "error"
    assert "detail" not in response.json()  # the operator's detail stays in admin
    conversation = refresh(session)
    assert conversation.status == ConversationStatus.FAILED
    assert conversation.end_reason == EndReason.ERROR
    assert conversation.end_detail == (
        "The visitor's browser could not reach the LiveKit server (livekit_unreachable)."
    )
    assert ended_signals == [(conversation.pk, EndReason.ERROR)]


@pytest.mark.parametrize(
    "code",
    [
        "livekit_unreachable",
        "mic_denied",
        "mic_unavailable",
        "disconnected",
        "start_failed",
        "agent_unavailable",
        "agent_failed",
    ],
)
def test_every_widget_error_code_gets_a_detail_naming_it(client, session, code):
    body = {"end_key": session["end_key"], "reason": "error", "detail": code}
    assert post_json(client, session["end_url"], body).status_code == 200
    detail = refresh(session).end_detail
    assert detail.endswith(f"({code}).") and len(detail) > len(code) + 20


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "error"},
        {"reason": "error", "detail": "something_else"},
        {"reason": "error", "detail": "<script>"},
        {"reason": "client_end", "detail": "mic_denied"},
    ],
)
def test_a_failure_without_a_known_widget_error_code_is_400(client, session, body):
    response = post_json(client, session["end_url"], {"end_key": session["end_key"], **body})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "detail" in response.json()["fields"]
    assert response.json()["detail"]
    assert refresh(session).is_open


def test_a_widget_failure_never_overwrites_an_ending_on_record(client, session):
    end_conversation(session["conversation"], EndReason.ERROR, detail="join failed", failed=True)
    body = {"end_key": session["end_key"], "reason": "error", "detail": "agent_failed"}
    response = post_json(client, session["end_url"], body)
    assert response.json()["end_reason"] == "error"
    assert refresh(session).end_detail == "join failed"
