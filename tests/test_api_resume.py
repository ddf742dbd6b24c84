"""POST /voice-widget/api/sessions/<id>/resume/: a reload rejoins the same conversation."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from livekit.api import ListParticipantsResponse, ParticipantInfo

from tests.api_support import (
    FakeLiveKitServer,
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
    post_json,
    raw_claims,
    use_livekit_url,
    verifier,
)
from tests.factories import make_conversation, make_turn
from voice_widget.api.views import hash_end_key
from voice_widget.lifecycle import end_conversation
from voice_widget.models import ConversationStatus, EndReason

pytestmark = pytest.mark.django_db

END_KEY = "the-visitors-end-key-0123456789abcdef"
LIST_PATH = "/twirp/livekit.RoomService/ListParticipants"
DISPATCH_PATH = "/twirp/livekit.AgentDispatchService/CreateDispatch"


def resume_url(conversation):
    return reverse("voice_widget:session-resume", kwargs={"conversation_id": conversation.pk})


def resume(client, conversation, end_key=END_KEY):
    return post_json(client, resume_url(conversation), {"end_key": end_key})


def open_conversation(**fields):
    fields = {
        "end_key_hash": hash_end_key(END_KEY),
        "status": ConversationStatus.ACTIVE,
        **fields,
    }
    return make_conversation(**fields)


@pytest.fixture
def livekit_with_agent(settings):
    agent = ParticipantInfo(identity="agent-AJ_1", kind=ParticipantInfo.Kind.AGENT)
    visitor = ParticipantInfo(identity="visitor-x", kind=ParticipantInfo.Kind.STANDARD)
    body = ListParticipantsResponse(participants=[visitor, agent]).SerializeToString()
    server = FakeLiveKitServer(body=body).start()
    use_livekit_url(settings, server.url)
    yield server
    server.stop()


@pytest.fixture
def livekit_without_agent(settings):
    # An empty body is both an empty participant list and an empty AgentDispatch.
    server = FakeLiveKitServer(body=b"").start()
    use_livekit_url(settings, server.url)
    yield server
    server.stop()


def test_resume_answers_a_token_for_the_same_room_and_identity_without_dispatch(
    client, livekit_with_agent
):
    conversation = open_conversation(agent_joined_at=timezone.now())
    response = resume(client, conversation)
    assert response.status_code == 200, response.content
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    assert body["conversation"] == str(conversation.pk)
    assert body["room_name"] == conversation.room_name
    assert body["identity"] == conversation.identity
    claims = verifier().verify(body["participant_token"])
    assert claims.identity == conversation.identity
    assert claims.video.room == conversation.room_name
    assert claims.video.room_join is True
    assert claims.video.can_publish_sources == ["microphone"]
    # No room configuration: a token dispatch into an existing room is ignored by LiveKit.
    assert "roomConfig" not in raw_claims(body["participant_token"])
    assert body["agent"] == "present"
    assert [r.path for r in livekit_with_agent.requests] == [LIST_PATH]


def test_resume_answers_the_transcript_so_far_without_system_lines(client, livekit_with_agent):
    conversation = open_conversation(agent_joined_at=timezone.now())
    make_turn(conversation, 1, "agent", "Hello, how can I help?")
    make_turn(conversation, 2, "system", "page context note")
    make_turn(conversation, 3, "user", "Which bike carries two kids?")
    make_turn(conversation, 4, "agent", "The Long John.")
    body = resume(client, conversation).json()
    assert body["transcript"] == [
        {"role": "agent", "text": "Hello, how can I help?"},
        {"role": "user", "text": "Which bike carries two kids?"},
        {"role": "agent", "text": "The Long John."},
    ]


def test_resume_sends_back_an_agent_that_left_with_agent_dispatch_service(
    client, livekit_without_agent, settings
):
    conversation = open_conversation(agent_joined_at=timezone.now())
    response = resume(client, conversation)
    assert response.status_code == 200, response.content
    assert response.json()["agent"] == "dispatched"
    paths = [r.path for r in livekit_without_agent.requests]
    assert paths == [LIST_PATH, DISPATCH_PATH]
    from livekit.api import CreateAgentDispatchRequest

    request = CreateAgentDispatchRequest.FromString(livekit_without_agent.requests[1].body)
    assert request.room == conversation.room_name
    assert request.agent_name == settings.VOICE_WIDGET["AGENT_NAME"]
    assert json.loads(request.metadata) == {"conversation": str(conversation.pk)}


def test_resume_leaves_a_first_dispatch_on_its_way_alone(client, livekit_without_agent):
    conversation = open_conversation(status=ConversationStatus.CREATED)
    assert resume(client, conversation).json()["agent"] == "unknown"
    assert livekit_without_agent.requests == []


def test_resume_says_unknown_when_livekit_cannot_be_asked(client):
    # tests.settings point at an unresolvable LiveKit URL.
    conversation = open_conversation(agent_joined_at=timezone.now())
    response = resume(client, conversation)
    assert response.status_code == 200
    assert response.json()["agent"] == "unknown"


def test_resume_refuses_a_wrong_end_key(client):
    conversation = open_conversation()
    response = resume(client, conversation, end_key="guessed")
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_end_key"


def test_resume_refuses_an_unknown_conversation(client):
    conversation = open_conversation()
    url = resume_url(conversation)
    conversation.delete()
    response = post_json(client, url, {"end_key": END_KEY})
    assert response.status_code == 404


def test_resume_refuses_an_ended_conversation(client):
    conversation = open_conversation()
    end_conversation(conversation.pk, EndReason.CLIENT_END)
    response = resume(client, conversation)
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conversation_ended"
    assert "Start a new one" in body["detail"]


def test_resume_refuses_after_the_window(client, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RESUME_WINDOW": 60}
    conversation = open_conversation(visitor_left_at=timezone.now() - timedelta(seconds=61))
    response = resume(client, conversation)
    assert response.status_code == 409
    assert response.json()["error"] == "resume_window_passed"


def test_resume_within_the_window_after_the_visitor_left(client, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RESUME_WINDOW": 60}
    conversation = open_conversation(visitor_left_at=timezone.now() - timedelta(seconds=50))
    assert resume(client, conversation).status_code == 200


def test_resume_refused_when_the_site_switched_it_off(client, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RESUME_WINDOW": 0}
    response = resume(client, open_conversation())
    assert response.status_code == 409
    assert "does not let conversations resume" in response.json()["detail"]


def test_resume_accepts_a_text_plain_body(client):
    conversation = open_conversation()
    response = client.post(
        resume_url(conversation), json.dumps({"end_key": END_KEY}), content_type="text/plain"
    )
    assert response.status_code == 200, response.content
