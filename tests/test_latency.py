"""A persona's reply latency over a period: median and 95th percentile per figure, in admin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_conversation, make_persona, make_turn
from voice_widget.latency import format_seconds, percentile, persona_latency

pytestmark = pytest.mark.django_db


def _answers(persona, seconds: list[float], *, age: timedelta = timedelta(hours=1)) -> None:
    conversation = make_conversation(persona)
    for number, value in enumerate(seconds, start=1):
        make_turn(
            conversation,
            number,
            "agent",
            f"answer {number}",
            created_at=timezone.now() - age,
            e2e_latency=value,
            llm_ttft=value / 4,
        )


def _figure(figures, name):
    return next(figure for figure in figures if figure.field == name)


def test_median_and_95th_percentile_over_the_period_and_only_this_persona():
    ben, other = make_persona(slug="ben"), make_persona(slug="other")
    _answers(ben, [float(n) for n in range(1, 21)])  # 1 … 20 s, within the last day
    _answers(ben, [100.0], age=timedelta(days=3))  # only in the 7-day period
    _answers(other, [50.0])
    make_turn(make_conversation(ben), 1, "user", "a visitor line has no figures")

    day = _figure(persona_latency(ben, days=1), "e2e_latency")
    assert (day.count, day.median, day.p95) == (20, 10.5, 19.0)
    week = _figure(persona_latency(ben, days=7), "e2e_latency")
    assert (week.count, week.median, week.p95) == (21, 11.0, 20.0)
    assert _figure(persona_latency(ben, days=1), "llm_ttft").median == 10.5 / 4
    empty = _figure(persona_latency(ben, days=1), "eou_delay")
    assert (empty.count, empty.median, empty.p95) == (0, None, None)


def test_percentile_is_nearest_rank():
    assert percentile([0.2], 0.95) == 0.2
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0
    assert format_seconds(0.4204) == "420 ms" and format_seconds(None) == "–"


def test_the_persona_page_links_to_its_latency_report_with_a_period_choice(admin_client):
    ben = make_persona(slug="ben", name="Ben")
    _answers(ben, [0.8, 1.2, 3.0])
    _answers(ben, [9.0], age=timedelta(days=10))
    change = admin_client.get(reverse("admin:voice_widget_persona_change", args=[ben.pk]))
    url = reverse("admin:voice_widget_persona_latency", args=[ben.pk])
    assert f'href="{url}"' in change.content.decode()

    week = admin_client.get(url).content.decode()  # seven days unless chosen otherwise
    assert "Latency of Ben" in week and "<strong>last 7 days</strong>" in week
    assert '<a href="?days=1">last day</a>' in week and '<a href="?days=30">' in week
    assert "<td>3</td>\n        <td>1200 ms</td>\n        <td>3000 ms</td>" in week
    month = admin_client.get(url, {"days": 30}).content.decode()
    assert "<td>4</td>\n        <td>2100 ms</td>\n        <td>9000 ms</td>" in month
    assert "<strong>last 7 days</strong>" in admin_client.get(url, {"days": "x"}).content.decode()


def test_the_latency_report_needs_permission_to_view_personas(client):
    ben = make_persona(slug="ben")
    url = reverse("admin:voice_widget_persona_latency", args=[ben.pk])
    staff = User.objects.create_user("reviewer", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_persona"))
    assert client.get(url).status_code == 200
    missing = reverse("admin:voice_widget_persona_latency", args=[987654])
    assert client.get(missing).status_code == 302  # admin's "does not exist" redirect


def test_the_json_export_carries_each_lines_latency(admin_client):
    conversation = make_conversation()
    make_turn(conversation, 1, "agent", "Hello", tts_ttfb=0.2, e2e_latency=None)
    response = admin_client.post(
        reverse("admin:voice_widget_conversation_changelist"),
        {"action": "export_json", "_selected_action": [conversation.pk]},
    )
    (turn,) = json.loads(response.content)[0]["turns"]
    assert turn["latency"] == {
        "eou_delay": None,
        "transcription_delay": None,
        "llm_ttft": None,
        "tts_ttfb": 0.2,
        "e2e_latency": None,
    }
