"""The consent notice on the session endpoint: a persona with a notice gets conversations
only with a fresh acceptance of that very notice, and the conversation keeps what was
accepted and when."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.api_support import (
    assert_refused,
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
    post_json,
)
from tests.factories import make_persona
from voice_widget.models import Conversation, consent_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker_alive")]

URL = "/voice-widget/api/sessions/"
NOTICE = "This conversation is recorded and processed by AI providers."
PRIVACY = "https://shop.example/privacy/"


@pytest.fixture
def persona():
    return make_persona(slug="ben", consent_text=NOTICE, consent_url=PRIVACY)


def start(client, **fields):
    return post_json(client, URL, {"persona": "ben", **fields})


def accepted(version, at=None):
    at = at or timezone.now() - timedelta(minutes=3)
    return {"version": version, "accepted_at": at.isoformat()}


def test_an_accepted_notice_is_stored_on_the_conversation(client, persona):
    at = timezone.now() - timedelta(days=2)
    response = start(client, consent=accepted(persona.consent_version, at))
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get()
    assert conversation.consent_text == NOTICE
    assert conversation.consent_version == persona.consent_version
    assert abs(conversation.consent_at - at) < timedelta(seconds=1)


def test_without_the_acceptance_no_conversation_starts(client, persona):
    assert_refused(start(client), 400, "consent_required")
    assert_refused(start(client, consent=None), 400, "consent_required")


def test_an_acceptance_of_another_version_of_the_notice_is_refused(client, persona):
    old = consent_version("An older notice.", PRIVACY)
    assert_refused(start(client, consent=accepted(old)), 400, "consent_required")


def test_an_acceptance_older_than_consent_max_age_is_refused(client, persona, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "CONSENT_MAX_AGE": 3600}
    stale = accepted(persona.consent_version, timezone.now() - timedelta(hours=2))
    assert_refused(start(client, consent=stale), 400, "consent_required")
    fresh = accepted(persona.consent_version, timezone.now() - timedelta(minutes=50))
    assert start(client, consent=fresh).status_code == 201


def test_an_acceptance_from_the_future_is_refused(client, persona):
    future = accepted(persona.consent_version, timezone.now() + timedelta(days=1))
    assert_refused(start(client, consent=future), 400, "consent_required")


def test_a_malformed_acceptance_is_a_clear_400(client, persona):
    response = start(client, consent={"version": persona.consent_version, "accepted_at": "soon"})
    assert response.status_code == 400
    assert "accepted_at" in response.json()["detail"]


def test_the_text_stored_is_the_personas_not_the_browsers(client, persona):
    consent = {**accepted(persona.consent_version), "text": "I agree to anything."}
    assert start(client, consent=consent).status_code == 201
    assert Conversation.objects.get().consent_text == NOTICE


def test_a_persona_without_a_notice_needs_no_acceptance(client):
    make_persona(slug="ben")
    assert start(client).status_code == 201
    conversation = Conversation.objects.get()
    assert (conversation.consent_text, conversation.consent_version) == ("", "")
    assert conversation.consent_at is None


def test_editing_the_notice_changes_its_version():
    first = consent_version(NOTICE, PRIVACY)
    assert first == consent_version(f"  {NOTICE}\n", PRIVACY)
    assert first != consent_version(NOTICE + " Also by humans.", PRIVACY)
    assert first != consent_version(NOTICE, "https://shop.example/privacy-2/")
    assert consent_version("", PRIVACY) == ""
