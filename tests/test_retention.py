"""Retention (purge_voice_widget) and erasure of one visitor's conversations."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_conversation, make_persona, make_turn
from voice_widget.models import Conversation, Turn
from voice_widget.retention import purge_before

pytestmark = pytest.mark.django_db


def aged(days: float, **fields):
    """A conversation created ``days`` ago with a transcript line and page context."""
    conversation = make_conversation(
        page_url="https://shop.test/bikes/",
        page_context={"cart": 2},
        signed_context={"first_name": "Ann"},
        **fields,
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    make_turn(conversation, 1, "user", f"Said {days} days ago")
    return conversation


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_voice_widget", *args, stdout=out)
    return out.getvalue()


def test_purge_deletes_exactly_what_is_older_than_the_retention(settings, django_user_model):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RETENTION_DAYS": 30}
    ann = django_user_model.objects.create_user("ann")
    old = aged(31, user=ann, identity=f"user-{ann.pk}-abc")
    just_inside = aged(29.9)
    new = aged(1)

    output = purge()

    assert "Deleted the transcripts and page context of 1 conversation(s)" in output
    assert "(1 transcript line(s))" in output
    old.refresh_from_db()
    assert list(old.turns.all()) == []
    assert (old.page_url, old.page_context, old.signed_context) == ("", {}, {})
    assert old.user is None and old.identity == ""
    assert old.content_purged_at is not None
    # The row stays for the statistics.
    assert old.persona_id and old.created_at
    for kept in (just_inside, new):
        kept.refresh_from_db()
        assert kept.turns.count() == 1 and kept.page_context == {"cart": 2}
        assert kept.content_purged_at is None
    assert purge().startswith("Deleted the transcripts and page context of 0 conversation(s)")


def test_purge_dry_run_reports_and_deletes_nothing(settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RETENTION_DAYS": 7}
    aged(8)
    aged(9)
    output = purge("--dry-run")
    assert "Would delete the transcripts and page context of 2 conversation(s)" in output
    assert Turn.objects.count() == 2
    assert not Conversation.objects.filter(content_purged_at__isnull=False).exists()


def test_purge_keeps_everything_when_retention_is_none():
    aged(3650)
    assert "kept forever" in purge()
    assert Turn.objects.count() == 1


def test_days_option_overrides_the_setting():
    aged(3)
    aged(1)
    assert "of 1 conversation(s)" in purge("--days", "2")
    with pytest.raises(CommandError, match="positive"):
        purge("--days", "0")


def test_purge_before_counts_turns_of_the_expired_conversations_only():
    old = aged(10)
    make_turn(old, 2, "agent", "Second line")
    aged(1)
    result = purge_before(timezone.now() - timedelta(days=5), dry_run=True)
    assert (result.conversations, result.turns) == (1, 2)


@pytest.mark.parametrize("value", [0, -1, "30", 1.5, True])
def test_bad_retention_setting_is_a_system_check_error(settings, value):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RETENTION_DAYS": value}
    assert "voice_widget.E022" in {message.id for message in run_checks()}
    with pytest.raises(CommandError, match="E022"):
        purge()


def test_good_retention_setting_passes_the_checks(settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RETENTION_DAYS": 90}
    assert "voice_widget.E022" not in {message.id for message in run_checks()}


# --- erasure -------------------------------------------------------------------------------


def erase(client, conversations, confirmed: bool):
    data = {"action": "erase_visitors", "_selected_action": [str(c.pk) for c in conversations]}
    if confirmed:
        data["confirmed"] = "yes"
    return client.post(
        reverse("admin:voice_widget_conversation_changelist") + "?audience=all", data
    )


def test_erasure_deletes_all_of_one_visitors_conversations_and_nobody_elses(
    admin_client, django_user_model
):
    ann = django_user_model.objects.create_user("ann")
    bob = django_user_model.objects.create_user("bob")
    persona = make_persona()
    anns = [aged(1, persona=persona, user=ann) for _ in range(3)]
    bobs = aged(1, persona=persona, user=bob)
    anonymous = aged(1, persona=persona)

    confirmation = erase(admin_client, anns[:1], confirmed=False)
    assert confirmation.status_code == 200
    page = confirmation.content.decode()
    assert "ann: 3 conversations" in page and "bob" not in page
    assert Conversation.objects.filter(user=ann).count() == 3  # nothing deleted yet

    response = erase(admin_client, anns[:1], confirmed=True)
    assert response.status_code == 302
    assert not Conversation.objects.filter(user=ann).exists()
    assert not Turn.objects.filter(conversation__in=[c.pk for c in anns]).exists()
    assert set(Conversation.objects.values_list("pk", flat=True)) == {bobs.pk, anonymous.pk}
    assert Turn.objects.count() == 2
    assert django_user_model.objects.filter(username="ann").exists()  # the account stays


def test_erasure_of_anonymous_conversations_explains_and_deletes_nothing(admin_client):
    anonymous = aged(1)
    response = erase(admin_client, [anonymous], confirmed=True)
    assert response.status_code == 302
    assert Conversation.objects.filter(pk=anonymous.pk).exists()


def test_erasure_needs_the_delete_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("vic", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    client.force_login(viewer)
    ann = django_user_model.objects.create_user("ann")
    conversation = aged(1, user=ann)
    erase(client, [conversation], confirmed=True)
    assert Conversation.objects.filter(pk=conversation.pk).exists()
