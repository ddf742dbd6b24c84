"""Persona versions: one per save on every path, a readable diff, restore, and the link
from each conversation to the version it ran with."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.api_support import fresh_throttle_cache  # noqa: F401 - autouse fixture
from tests.factories import make_conversation, make_persona
from tests.test_admin import rendered_form_data
from voice_widget import history
from voice_widget.models import Conversation, Persona

pytestmark = pytest.mark.django_db


def change_url(persona):
    return reverse("admin:voice_widget_persona_change", args=[persona.pk])


def save_in_admin(client, persona, **changes):
    """Submit the change form as an editor would: what the page shows, with ``changes``."""
    data = rendered_form_data(client.get(change_url(persona)).content.decode())
    data.update({name: [value] for name, value in changes.items()})
    data["_continue"] = ["Save and continue editing"]
    response = client.post(change_url(persona), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


# --- every save path writes a version -----------------------------------------------------------


def test_a_save_in_admin_records_who_changed_which_field_from_what_to_what(
    admin_client, admin_user
):
    persona = make_persona(instructions="Be brief.")
    save_in_admin(admin_client, persona, instructions="Be brief and kind.")
    latest, first = persona.history.all()[:2]
    assert latest.history_user == admin_user
    assert latest.history_type == "~"
    [change] = history.changes_between(first, latest)
    assert (change.name, change.old, change.new) == (
        "instructions",
        "Be brief.",
        "Be brief and kind.",
    )


def test_a_save_from_code_records_a_version_without_a_user():
    persona = make_persona()
    persona.greeting = "Moin!"
    persona.save()
    assert persona.history.count() == 2
    assert persona.history.first().history_user is None
    assert persona.history.first().greeting == "Moin!"


def test_duplicate_action_records_the_copys_first_version_by_the_editor(admin_client, admin_user):
    persona = make_persona(name="Paula", slug="paula")
    admin_client.post(
        reverse("admin:voice_widget_persona_changelist"),
        {"action": "duplicate", "_selected_action": [persona.pk]},
    )
    copy = Persona.objects.get(slug="paula-copy")
    [version] = copy.history.all()
    assert version.history_type == "+"
    assert version.history_user == admin_user
    assert version.history_change_reason == "Duplicated from paula"
    assert version.is_active is False


def test_seed_demo_records_a_first_version_of_each_persona_it_creates():
    call_command("seed_demo", stdout=io.StringIO())
    for persona in Persona.objects.all():
        [version] = persona.history.all()
        assert version.history_change_reason == "Created by seed_demo"
        assert version.instructions == persona.instructions
    call_command("seed_demo", stdout=io.StringIO())  # existing ones are left alone
    assert all(p.history.count() == 1 for p in Persona.objects.all())


# --- the change page: history, diff, restore ------------------------------------------------------


def test_change_page_lists_versions_newest_first_with_a_word_diff(admin_client):
    persona = make_persona(instructions="You sell red bikes in Leipzig.")
    save_in_admin(admin_client, persona, instructions="You sell green bikes in Leipzig.")
    html = admin_client.get(change_url(persona)).content.decode()
    assert "History: 2 versions" in html
    versions = html[html.index('id="versions"') :]
    assert '<del class="vw-del">red</del>' in versions
    assert '<ins class="vw-ins">green</ins>' in versions
    assert versions.index("Restore version 1") > 0
    assert "Restore version 2" not in versions  # the current one needs no restoring


def test_short_values_show_old_and_new_and_choices_by_their_label():
    persona = make_persona(theme="auto")
    persona.theme = "dark"
    persona.save()
    new, old = persona.history.all()[:2]
    [change] = history.changes_between(old, new)
    assert (change.old, change.new) == ("Follow the visitor's system", "Dark")
    assert str(change.html) == (
        '<del class="vw-old">Follow the visitor&#x27;s system</del> → '
        '<ins class="vw-new">Dark</ins>'
    )


def test_word_diff_escapes_html_and_shortens_long_unchanged_text():
    old = "word " * 60 + "<b>old</b>"
    diff = str(history.word_diff(old, "word " * 60 + "<b>new</b>"))
    assert "<b>" not in diff and "&lt;b&gt;old&lt;/b&gt;" in diff
    assert " … " in diff and diff.count("word") < 40


def test_restore_saves_the_old_version_as_a_new_one(admin_client, admin_user):
    persona = make_persona(instructions="Version one.", greeting="Hi!")
    save_in_admin(admin_client, persona, instructions="Version two.")
    first = persona.history.order_by("history_date").first()
    url = reverse("admin:voice_widget_persona_restore", args=[persona.pk, first.history_id])

    response = admin_client.post(url)

    assert response.status_code == 302
    assert response["Location"] == change_url(persona) + "#versions"
    persona.refresh_from_db()
    assert persona.instructions == "Version one."
    restored = persona.history.first()
    assert persona.history.count() == 3  # nothing is lost: the restore is a version too
    assert restored.history_user == admin_user
    assert restored.history_change_reason == "Restored version 1"
    html = admin_client.get(change_url(persona)).content.decode()
    assert "Restored version 1 as a new version." in html


def test_restore_from_the_change_form_ignores_the_forms_other_fields(admin_client):
    """The restore buttons sit in the change form (formaction): the unsaved edits the form
    posts along are not saved."""
    persona = make_persona(instructions="Version one.")
    save_in_admin(admin_client, persona, instructions="Version two.")
    first = persona.history.order_by("history_date").first()
    data = rendered_form_data(admin_client.get(change_url(persona)).content.decode())
    data["instructions"] = ["An unsaved edit."]
    admin_client.post(
        reverse("admin:voice_widget_persona_restore", args=[persona.pk, first.history_id]), data
    )
    persona.refresh_from_db()
    assert persona.instructions == "Version one."


def test_restore_is_refused_when_the_old_version_is_no_longer_valid(admin_client):
    persona = make_persona(slug="ben")
    persona.slug = "benjamin"
    persona.save()
    make_persona(slug="ben")  # another persona took the old slug
    first = persona.history.order_by("history_date").first()
    response = admin_client.post(
        reverse("admin:voice_widget_persona_restore", args=[persona.pk, first.history_id]),
        follow=True,
    )
    persona.refresh_from_db()
    assert persona.slug == "benjamin"
    assert "Version 1 cannot be restored" in response.content.decode()
    assert persona.history.count() == 2


def test_restore_needs_post_change_permission_and_the_personas_own_version(
    admin_client, django_user_model
):
    persona = make_persona()
    other = make_persona()
    own = persona.history.first()
    url = reverse("admin:voice_widget_persona_restore", args=[persona.pk, own.history_id])
    assert admin_client.get(url).status_code == 405
    foreign = reverse(
        "admin:voice_widget_persona_restore", args=[persona.pk, other.history.first().history_id]
    )
    assert admin_client.post(foreign).status_code == 404
    viewer = django_user_model.objects.create_user("vic", password="x", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_persona"))
    client = Client()
    client.force_login(viewer)
    assert client.post(url).status_code == 403
    assert (
        client.get(
            reverse("admin:voice_widget_persona_version", args=[persona.pk, own.history_id])
        ).status_code
        == 200
    )


def test_version_page_shows_that_versions_settings_and_what_changed_since(admin_client):
    persona = make_persona(instructions="The old prompt.")
    persona.instructions = "The new prompt."
    persona.save()
    first = persona.history.order_by("history_date").first()
    html = admin_client.get(
        reverse("admin:voice_widget_persona_version", args=[persona.pk, first.history_id])
    ).content.decode()
    assert "version 1" in html
    assert "The old prompt." in html
    assert '<del class="vw-del">old</del>' in html and '<ins class="vw-ins">new</ins>' in html


# --- conversations record their version ----------------------------------------------------------


@pytest.mark.usefixtures("worker_alive")
def test_a_session_records_the_persona_version_it_runs_with(client):
    persona = make_persona(slug="ben", greeting="First greeting")
    persona.greeting = "Second greeting"
    persona.save()
    response = client.post(
        "/voice-widget/api/sessions/",
        json.dumps({"persona": "ben"}),
        content_type="application/json",
    )
    assert response.status_code == 201
    conversation = Conversation.objects.get(pk=response.json()["conversation"])
    assert conversation.persona_version == persona.history.first()
    assert conversation.persona_version.greeting == "Second greeting"
    persona.greeting = "Third greeting"
    persona.save()
    conversation.refresh_from_db()
    assert conversation.persona_version.greeting == "Second greeting"


@pytest.mark.usefixtures("worker_alive")
def test_each_session_records_the_version_its_snapshot_was_taken_from(client):
    persona = make_persona(slug="ben", greeting="First greeting")

    def start(address):
        response = client.post(
            "/voice-widget/api/sessions/",
            json.dumps({"persona": "ben"}),
            content_type="application/json",
            REMOTE_ADDR=address,
        )
        assert response.status_code == 201
        return Conversation.objects.get(pk=response.json()["conversation"])

    first, again = start("10.0.0.1"), start("10.0.0.2")  # the second from the cache
    assert first.persona_version == again.persona_version == persona.history.first()
    persona.greeting = "Second greeting"
    persona.save()
    edited = start("10.0.0.3")
    assert edited.persona_version == persona.history.first() != first.persona_version
    assert edited.persona_version.greeting == edited.persona_snapshot["greeting"]


def test_transcript_page_links_to_the_version_it_ran_with(admin_client):
    persona = make_persona()
    persona.instructions = "Prompt of version 2."
    persona.save()
    conversation = make_conversation(persona, persona_version=persona.history.first())
    html = admin_client.get(
        reverse("admin:voice_widget_conversation_change", args=[conversation.pk])
    ).content.decode()
    link = reverse(
        "admin:voice_widget_persona_version",
        args=[persona.pk, conversation.persona_version_id],
    )
    assert f'href="{link}"' in html
    assert "Version 2 of" in html
    assert "Prompt of version 2." in admin_client.get(link).content.decode()


def test_transcript_page_without_a_recorded_version_says_so(admin_client):
    conversation = make_conversation()
    html = admin_client.get(
        reverse("admin:voice_widget_conversation_change", args=[conversation.pk])
    ).content.decode()
    assert "Not recorded" in html


def test_the_newest_versions_are_numbered_and_compared_with_the_one_before():
    persona = make_persona(greeting="One")
    for greeting in ("Two", "Three"):
        persona.greeting = greeting
        persona.save()
    shown = history.versions(persona, limit=2)
    assert [v.number for v in shown] == [3, 2]
    assert [(c.old, c.new) for c in shown[1].changes] == [("One", "Two")]
    assert history.version_number(shown[1].record) == 2
