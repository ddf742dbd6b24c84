"""POST /voice-widget/api/livekit/webhook/: LiveKit's signed events update conversations."""

import base64
import hashlib

import pytest
from livekit.api import AccessToken, ParticipantInfo, Room, WebhookEvent

from tests.api_support import fresh_throttle_cache, signed_webhook  # noqa: F401
from tests.factories import make_conversation
from voice_widget.models import Conversation, ConversationStatus, EndReason
from voice_widget.signals import conversation_ended

pytestmark = pytest.mark.django_db

URL = "/voice-widget/api/livekit/webhook/"


def send(client, body, auth):
    return client.post(URL, body, content_type="application/webhook+json", HTTP_AUTHORIZATION=auth)


def room_finished(room_name):
    return WebhookEvent(event="room_finished", id="EV_1", room=Room(name=room_name))


def participant_left(room_name, identity):
    return WebhookEvent(
        event="participant_left",
        id="EV_2",
        room=Room(name=room_name),
        participant=ParticipantInfo(identity=identity),
    )


def participant_joined(room_name, identity):
    return WebhookEvent(
        event="participant_joined",
        id="EV_3",
        room=Room(name=room_name),
        participant=ParticipantInfo(identity=identity),
    )


@pytest.fixture
def conversation():
    return make_conversation(room_name="vw-webhook", identity="visitor-abc")


@pytest.fixture
def ended_signals():
    received = []

    def receiver(sender, conversation, reason, **kwargs):
        received.append(reason)

    conversation_ended.connect(receiver, dispatch_uid="test_webhook")
    yield received
    conversation_ended.disconnect(dispatch_uid="test_webhook")


def test_signed_room_finished_ends_the_conversation(client, conversation, ended_signals):
    response = send(client, *signed_webhook(room_finished("vw-webhook")))
    assert response.status_code == 200, response.content
    assert response.json() == {"event": "room_finished", "handled": True}
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.ENDED
    assert conversation.end_reason == EndReason.ROOM_FINISHED
    assert ended_signals == [EndReason.ROOM_FINISHED]


def test_visitor_leaving_ends_the_conversation_as_participant_left_without_resume_window(
    client, conversation, settings
):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RESUME_WINDOW": 0}
    response = send(client, *signed_webhook(participant_left("vw-webhook", "visitor-abc")))
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.end_reason == EndReason.PARTICIPANT_LEFT


def test_visitor_leaving_within_a_resume_window_records_the_departure_only(client, conversation):
    response = send(client, *signed_webhook(participant_left("vw-webhook", "visitor-abc")))
    assert response.json() == {"event": "participant_left", "handled": True}
    conversation.refresh_from_db()
    assert conversation.status not in (ConversationStatus.ENDED, ConversationStatus.FAILED)
    assert conversation.visitor_left_at is not None

    send(client, *signed_webhook(participant_joined("vw-webhook", "visitor-abc")))
    conversation.refresh_from_db()
    assert conversation.visitor_left_at is None


def test_agent_leaving_does_not_end_the_conversation(client, conversation):
    response = send(client, *signed_webhook(participant_left("vw-webhook", "agent-AJ_123")))
    assert response.json()["handled"] is False
    conversation.refresh_from_db()
    assert conversation.is_open


def test_visitor_joining_is_recorded_once(client, conversation):
    response = send(client, *signed_webhook(participant_joined("vw-webhook", "visitor-abc")))
    assert response.status_code == 200, response.content
    assert response.json() == {"event": "participant_joined", "handled": True}
    conversation.refresh_from_db()
    joined_at = conversation.visitor_joined_at
    assert joined_at is not None
    assert conversation.status == ConversationStatus.CREATED  # the agent's to move on
    # A reconnect joins again: the first join is kept.
    again = send(client, *signed_webhook(participant_joined("vw-webhook", "visitor-abc")))
    assert again.json()["handled"] is False
    conversation.refresh_from_db()
    assert conversation.visitor_joined_at == joined_at


def test_agent_joining_is_not_the_visitor_joining(client, conversation):
    response = send(client, *signed_webhook(participant_joined("vw-webhook", "agent-AJ_123")))
    assert response.json()["handled"] is False
    conversation.refresh_from_db()
    assert conversation.visitor_joined_at is None


def test_joining_an_ended_conversation_changes_nothing(client, conversation):
    send(client, *signed_webhook(room_finished("vw-webhook")))
    response = send(client, *signed_webhook(participant_joined("vw-webhook", "visitor-abc")))
    assert response.json()["handled"] is False
    conversation.refresh_from_db()
    assert conversation.visitor_joined_at is None


def test_bearer_prefixed_authorization_is_accepted(client, conversation):
    body, token = signed_webhook(room_finished("vw-webhook"))
    assert send(client, body, f"Bearer {token}").status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.ENDED


def test_repeated_events_change_nothing_more(client, conversation, ended_signals):
    body, auth = signed_webhook(room_finished("vw-webhook"))
    assert send(client, body, auth).json()["handled"] is True
    ended_at = Conversation.objects.get(pk=conversation.pk).ended_at
    again = send(client, body, auth)
    later = send(client, *signed_webhook(participant_left("vw-webhook", "visitor-abc")))
    assert again.status_code == later.status_code == 200
    assert again.json()["handled"] is False and later.json()["handled"] is False
    conversation.refresh_from_db()
    assert conversation.end_reason == EndReason.ROOM_FINISHED
    assert conversation.ended_at == ended_at
    assert ended_signals == [EndReason.ROOM_FINISHED]


def test_event_for_an_unknown_room_is_acknowledged_and_ignored(client, conversation):
    response = send(client, *signed_webhook(room_finished("some-other-app-room")))
    assert response.status_code == 200
    assert response.json() == {"event": "room_finished", "handled": False}
    conversation.refresh_from_db()
    assert conversation.is_open


@pytest.mark.parametrize(
    "event",
    [room_finished("vw-web\u0000hook"), participant_left("vw-webhook", "visitor-\u0000")],
    ids=["room-name", "identity"],
)
def test_signed_event_with_a_nul_character_is_400(client, conversation, event):
    response = send(client, *signed_webhook(event))
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
    assert "NUL" in response.json()["detail"]
    conversation.refresh_from_db()
    assert conversation.status != ConversationStatus.ENDED


def test_event_signed_with_another_secret_is_401(client, conversation):
    body, auth = signed_webhook(
        room_finished("vw-webhook"), secret="an-attackers-secret-that-is-long-enough-000"
    )
    response = send(client, body, auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    conversation.refresh_from_db()
    assert conversation.is_open


def test_body_changed_after_signing_is_401(client, conversation):
    _, auth = signed_webhook(room_finished("vw-other"))
    body, _ = signed_webhook(room_finished("vw-webhook"))
    assert send(client, body, auth).status_code == 401
    conversation.refresh_from_db()
    assert conversation.is_open


def test_missing_authorization_is_401(client, conversation):
    body, _ = signed_webhook(room_finished("vw-webhook"))
    response = client.post(URL, body, content_type="application/webhook+json")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"


def test_signed_body_that_is_not_an_event_is_400(client, conversation):
    body = '{"event": ["not", "a", "string"]}'
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = (
        AccessToken("APItestkey", "test-secret-that-is-long-enough-for-livekit-0123456789")
        .with_sha256(digest)
        .to_jwt()
    )
    response = send(client, body, token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_webhook_without_livekit_configured_is_503(client, settings, livekit_env_clear):
    settings.DEBUG = False
    settings.VOICE_WIDGET = {}
    response = client.post(URL, "{}", content_type="application/webhook+json")
    assert response.status_code == 503
    assert response.json()["error"] == "livekit_not_configured"
