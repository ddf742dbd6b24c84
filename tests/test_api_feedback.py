"""POST /voice-widget/api/sessions/<id>/feedback/: the visitor rates a conversation, with
the conversation's end key as the only credential."""

import json

import pytest
from django.urls import reverse

from tests.api_support import (
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
    post_json,
)
from tests.factories import make_conversation, make_persona
from voice_widget.api.views import hash_end_key
from voice_widget.models import Conversation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker_alive")]


@pytest.fixture
def session(client):
    """A conversation created through the API, for a persona that asks for feedback."""
    make_persona(slug="ben", feedback_enabled=True)
    return post_json(client, "/voice-widget/api/sessions/", {"persona": "ben"}).json()


def rate(client, session, **fields):
    body = {"end_key": session["end_key"], **fields}
    return post_json(client, session["feedback_url"], body)


def stored(session):
    conversation = Conversation.objects.get(pk=session["conversation"])
    return conversation.feedback_rating, conversation.feedback_comment


def test_the_session_answer_names_the_feedback_url(session):
    assert session["feedback_url"] == reverse(
        "voice_widget:session-feedback", kwargs={"conversation_id": session["conversation"]}
    )


def test_a_thumbs_up_is_stored_with_its_time(client, session):
    response = rate(client, session, rating="up")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "conversation": session["conversation"],
        "rating": "up",
        "comment": "",
    }
    assert response["Cache-Control"] == "no-store"
    assert stored(session) == ("up", "")
    assert Conversation.objects.get().feedback_at is not None


def test_a_later_rating_with_a_comment_replaces_the_first(client, session):
    rate(client, session, rating="up")
    response = rate(client, session, rating="down", comment="  It did not know the prices.  ")
    assert response.status_code == 200
    assert stored(session) == ("down", "It did not know the prices.")


def test_a_beacon_style_text_plain_body_is_accepted(client, session):
    response = client.post(
        session["feedback_url"],
        json.dumps({"end_key": session["end_key"], "rating": "down"}),
        content_type="text/plain;charset=UTF-8",
    )
    assert response.status_code == 200, response.content
    assert stored(session) == ("down", "")


def test_a_wrong_end_key_is_refused_and_stores_nothing(client, session):
    response = post_json(client, session["feedback_url"], {"end_key": "guess", "rating": "up"})
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_end_key"
    assert stored(session) == ("", "")


def test_an_unknown_conversation_is_404(client, session):
    url = session["feedback_url"].replace(session["conversation"][:8], "00000000")
    response = post_json(client, url, {"end_key": session["end_key"], "rating": "up"})
    assert response.status_code == 404
    assert response.json()["error"] == "conversation_not_found"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rating": "meh"}, "rating"),
        ({}, "rating"),
        ({"rating": "up", "comment": "x" * 1001}, "comment"),
        ({"rating": "up", "comment": 42}, "comment"),
        ({"rating": "up", "comment": "nul \x00 byte"}, "comment"),
    ],
)
def test_bad_feedback_is_a_400_naming_the_field(client, session, fields, field):
    response = rate(client, session, **fields)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert stored(session) == ("", "")


def test_a_persona_that_does_not_ask_for_feedback_refuses_it(client):
    make_persona(slug="nora", feedback_enabled=False)
    session = post_json(client, "/voice-widget/api/sessions/", {"persona": "nora"}).json()
    response = rate(client, session, rating="up")
    assert response.status_code == 403
    assert response.json()["error"] == "feedback_disabled"
    assert stored(session) == ("", "")


def test_the_setting_the_conversation_ran_with_counts(client):
    """Switching feedback off in admin does not refuse the rating of a conversation that
    offered it; a snapshot from before the field existed follows the persona."""
    persona = make_persona(slug="ben", feedback_enabled=True)
    session = post_json(client, "/voice-widget/api/sessions/", {"persona": "ben"}).json()
    persona.feedback_enabled = False
    persona.save()
    assert rate(client, session, rating="up").status_code == 200

    snapshot = persona.snapshot()
    del snapshot["feedback_enabled"]
    old = make_conversation(persona, persona_snapshot=snapshot, end_key_hash=hash_end_key("k"))
    url = reverse("voice_widget:session-feedback", kwargs={"conversation_id": old.pk})
    response = post_json(client, url, {"end_key": "k", "rating": "up"})
    assert response.status_code == 403
    assert response.json()["error"] == "feedback_disabled"
