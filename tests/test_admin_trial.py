""" "Try it here": the widget on the persona's change page, its sessions recorded as tests."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from tests.api_support import fresh_throttle_cache  # noqa: F401 - autouse fixture
from tests.factories import make_conversation, make_heartbeat, make_persona
from voice_widget.models import Conversation
from voice_widget.trials import SALT, sign_trial

pytestmark = pytest.mark.django_db

SESSIONS = "/voice-widget/api/sessions/"


def change_url(persona):
    return reverse("admin:voice_widget_persona_change", args=[persona.pk])


def widget_attribute(html: str, name: str) -> str:
    element = re.search(r"<voice-widget[^>]*>", html).group(0)
    return unescape(re.search(rf'\s{name}="([^"]*)"', element).group(1))


@pytest.fixture
def editor(django_user_model):
    return django_user_model.objects.create_user("edna", password="x", is_staff=True)


@pytest.fixture
def editor_client(editor):
    # Real CSRF checks, as in the browser: the widget sends the token the page carries.
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    return client


def start_from_page(client, persona):
    """What the widget does: POST to the endpoint the change page gave it, with its token."""
    html = client.get(change_url(persona)).content.decode()
    endpoint = widget_attribute(html, "endpoint")
    return client.post(
        endpoint,
        json.dumps({"persona": persona.slug}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=widget_attribute(html, "csrf-token"),
    )


def test_change_page_carries_the_widget_for_the_persona_inline(admin_client):
    persona = make_persona(slug="ben", position="floating")
    html = admin_client.get(change_url(persona)).content.decode()
    assert 'id="try-it"' in html
    assert widget_attribute(html, "persona") == "ben"
    assert widget_attribute(html, "position") == "inline"
    assert widget_attribute(html, "endpoint").startswith(SESSIONS + "?trial=")
    assert "voice_widget/voice-widget.js" in html


def test_change_page_says_when_no_worker_runs_and_how_to_start_one(admin_client):
    persona = make_persona()
    html = admin_client.get(change_url(persona)).content.decode()
    assert 'data-testid="no-worker"' in html
    assert "python manage.py run_voice_agent dev" in html


def test_change_page_counts_running_workers(admin_client):
    make_heartbeat()  # alive, for the test settings' agent name
    persona = make_persona()
    html = admin_client.get(change_url(persona)).content.decode()
    assert 'data-testid="no-worker"' not in html
    assert "1 voice worker is running." in html


def test_inactive_persona_page_says_to_activate_it_and_has_no_widget(admin_client):
    persona = make_persona(is_active=False)
    html = admin_client.get(change_url(persona)).content.decode()
    assert "<voice-widget" not in html
    assert "inactive" in html


@pytest.mark.usefixtures("worker_alive")
def test_session_from_the_change_page_is_the_editors_test(editor_client, editor):
    persona = make_persona(slug="ben")
    editor.is_superuser = True  # may open the change page
    editor.save()
    response = start_from_page(editor_client, persona)
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get(pk=response.json()["conversation"])
    assert conversation.is_test is True
    assert conversation.user == editor


@pytest.mark.usefixtures("worker_alive")
def test_visitor_session_is_not_a_test(client):
    make_persona(slug="ben")
    response = client.post(SESSIONS, {"persona": "ben"}, content_type="application/json")
    assert response.status_code == 201
    assert Conversation.objects.get().is_test is False


@pytest.mark.parametrize(
    "case",
    ["anonymous", "other_staff", "not_staff", "other_persona", "forged", "expired"],
)
@pytest.mark.usefixtures("worker_alive")
def test_a_trial_proof_counts_only_for_its_staff_user_and_persona(
    case, django_user_model, editor, monkeypatch
):
    """The browser alone cannot mark a session as a test: the proof must verify, and the
    session's own user must be the staff member it was signed for."""
    make_persona(slug="ben")
    make_persona(slug="paula")
    proof = sign_trial(persona="ben", user_id=editor.pk)
    client = Client()
    if case == "other_staff":
        client.force_login(django_user_model.objects.create_user("sam", is_staff=True))
    elif case == "not_staff":
        editor.is_staff = False
        editor.save()
        client.force_login(editor)
    elif case == "forged":
        proof = signing.dumps({"persona": "ben", "user": str(editor.pk)}, salt="another-salt")
        client.force_login(editor)
    elif case == "expired":
        monkeypatch.setattr("voice_widget.trials.MAX_AGE", -1)
        client.force_login(editor)
    elif case == "other_persona":
        client.force_login(editor)
    slug = "paula" if case == "other_persona" else "ben"
    response = client.post(
        f"{SESSIONS}?trial={proof}", {"persona": slug}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert Conversation.objects.get().is_test is False


@pytest.mark.usefixtures("worker_alive")
def test_the_same_proof_with_its_own_user_is_a_test(editor):
    """The counterpart of the refusals above: the verifying case does mark it."""
    make_persona(slug="ben")
    client = Client()
    client.force_login(editor)
    proof = sign_trial(persona="ben", user_id=editor.pk)
    client.post(f"{SESSIONS}?trial={proof}", {"persona": "ben"}, content_type="application/json")
    assert Conversation.objects.get().is_test is True
    assert signing.loads(proof, salt=SALT)["persona"] == "ben"


def test_conversation_list_shows_visitors_by_default_and_tests_on_request(admin_client):
    persona = make_persona()
    make_conversation(persona, room_name="vw-visitor")
    make_conversation(persona, room_name="vw-editor-try", is_test=True)
    url = reverse("admin:voice_widget_conversation_changelist")
    default = admin_client.get(url).content.decode()
    assert "vw-visitor" in default and "vw-editor-try" not in default
    tests = admin_client.get(url, {"audience": "tests"}).content.decode()
    assert "vw-editor-try" in tests and "vw-visitor" not in tests
    everyone = admin_client.get(url, {"audience": "all"}).content.decode()
    assert "vw-editor-try" in everyone and "vw-visitor" in everyone


def test_queryset_helpers_split_visitors_from_tests():
    persona = make_persona()
    visitor = make_conversation(persona)
    trial = make_conversation(persona, is_test=True)
    assert list(Conversation.objects.visitors()) == [visitor]
    assert list(Conversation.objects.tests()) == [trial]


def test_exporting_the_whole_list_leaves_editors_tests_out_by_default(admin_client):
    persona = make_persona()
    visitor = make_conversation(persona)
    make_conversation(persona, is_test=True)
    url = reverse("admin:voice_widget_conversation_changelist")
    data = {"action": "export_json", "select_across": "1", "_selected_action": [str(visitor.pk)]}
    exported = json.loads(admin_client.post(url, data).content)
    assert [item["conversation"] for item in exported] == [str(visitor.pk)]
    everyone = json.loads(admin_client.post(url + "?audience=all", data).content)
    assert len(everyone) == 2 and {item["is_test"] for item in everyone} == {True, False}
