"""The cost column, the change page's estimate, the persona's budget, and the report page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_conversation, make_persona, make_turn
from voice_widget import report
from voice_widget.models import BudgetUnit, Conversation, ConversationStatus, EndReason, Turn

pytestmark = pytest.mark.django_db

REPORT = "admin:voice_widget_conversation_report"
PRICES = {"cartesia/sonic-2": {"per_1k_characters": "0.05"}}
# 1,000 characters at $0.05/1K = $0.05.
FIVE_CENTS = {
    "models": [
        {"type": "tts_usage", "provider": "Cartesia", "model": "sonic-2", "characters_count": 1000}
    ]
}


@pytest.fixture(autouse=True)
def priced(settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "PRICES": PRICES}
    settings.TIME_ZONE = "UTC"


def talk(persona, *, minutes, reason=EndReason.CLIENT_END, usage=None, days_ago=0):
    now = timezone.now()
    conversation = make_conversation(
        persona,
        status=ConversationStatus.ENDED,
        end_reason=reason,
        usage=usage if usage is not None else FIVE_CENTS,
        started_at=now - timedelta(minutes=minutes),
        ended_at=now,
    )
    if days_ago:
        Conversation.objects.filter(pk=conversation.pk).update(
            created_at=conversation.created_at - timedelta(days=days_ago),
            started_at=conversation.started_at - timedelta(days=days_ago),
            ended_at=conversation.ended_at - timedelta(days=days_ago),
        )
    return conversation


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_conversation_list_shows_each_conversations_estimated_cost(admin_client):
    talk(make_persona(), minutes=2)
    response = admin_client.get(reverse("admin:voice_widget_conversation_changelist"))
    assert '<td class="field-cost_display">0.0500</td>' in text(response)


def test_conversation_change_page_breaks_the_cost_down(admin_client):
    conversation = talk(make_persona(), minutes=2)
    url = reverse("admin:voice_widget_conversation_change", args=[conversation.pk])
    page = text(admin_client.get(url))
    assert "<strong>0.0500 USD</strong>" in page
    assert "<li>TTS cartesia/sonic-2: 0.0500 USD</li>" in page


def test_persona_change_page_has_the_budget_and_what_today_used(admin_client):
    persona = make_persona(daily_budget=Decimal("1.00"))
    talk(persona, minutes=1)
    talk(persona, minutes=1)
    page = text(admin_client.get(reverse("admin:voice_widget_persona_change", args=[persona.pk])))
    assert 'name="daily_budget"' in page and 'name="daily_budget_unit"' in page
    assert "0.1000 USD" in page
    assert f"{reverse(REPORT)}?persona={persona.pk}" in page


def test_persona_change_page_shows_minutes_for_a_minutes_budget(admin_client):
    persona = make_persona(daily_budget=Decimal("30"), daily_budget_unit=BudgetUnit.MINUTES)
    talk(persona, minutes=3)
    page = text(admin_client.get(reverse("admin:voice_widget_persona_change", args=[persona.pk])))
    assert "3.0 min" in page


def test_report_shows_each_persona_per_day_with_totals_and_charts(admin_client):
    paula = make_persona(name="Paula")
    ben = make_persona(name="Ben")
    talk(paula, minutes=2)
    talk(paula, minutes=4, reason=EndReason.MAX_DURATION)
    talk(paula, minutes=6, days_ago=3)
    talk(ben, minutes=1)
    response = admin_client.get(reverse(REPORT))
    assert response.status_code == 200
    page = text(response)
    sections = page.split('<section class="vw-report-persona"')[1:]
    assert [">Ben</a></h2>" in part for part in sections] == [True, False]  # by name
    paula_part = sections[1]
    # Totals: 3 conversations, 12 minutes, 4 on average, 3 × $0.05.
    assert "<dt>Conversations</dt><dd>3</dd>" in paula_part
    assert "<dt>Total duration</dt><dd>12:00</dd>" in paula_part
    assert "<dt>Average duration</dt><dd>4:00</dd>" in paula_part
    assert "<dt>Estimated cost</dt><dd>0.1500 USD" in paula_part
    assert "Visitor ended it 2 · Reached the maximum length 1" in paula_part
    # Today's row: 2 conversations, 6 minutes, 3 on average, $0.10.
    today = timezone.localdate()
    row = re.search(
        rf"<th scope=\"row\">{today:%a} {today.day} {today:%b}</th>(.*?)</tr>", paula_part
    )
    cells = re.findall(r'<td class="vw-num">([^<]*)</td>', row.group(1))
    assert cells[:4] == ["2", "6:00", "3:00", "0.1000"]
    assert cells[4:] == ["–"] * len(Turn.LATENCY_FIELDS)  # no replies timed that day
    # Three server-drawn charts per persona, one bar per day of the period, no script.
    assert paula_part.count('<svg class="vw-chart"') == 3
    assert paula_part.count('<rect class="vw-bar"') == 3 * report.DEFAULT_PERIOD
    assert "<script" not in page.split("</header>", 1)[-1]


def test_report_period_and_persona_choice(admin_client):
    paula = make_persona(name="Paula")
    ben = make_persona(name="Ben")
    talk(paula, minutes=2, days_ago=10)
    talk(ben, minutes=1)
    week = text(admin_client.get(reverse(REPORT), {"days": 7}))
    assert ">Paula<" not in week.split("</select>", 2)[-1] and ">Ben</a>" in week
    month = text(admin_client.get(reverse(REPORT), {"days": 30, "persona": paula.pk}))
    assert ">Paula</a>" in month and ">Ben</a>" not in month
    assert month.count('<rect class="vw-bar"') == 3 * 30
    assert '<option value="30" selected>' in month
    # An unknown period or persona falls back to the defaults instead of failing.
    assert admin_client.get(reverse(REPORT), {"days": "x", "persona": "y"}).status_code == 200


def test_report_shows_the_medians_of_the_latency_the_worker_records(admin_client):
    conversation = talk(make_persona(name="Paula"), minutes=1)
    for sequence, seconds in ((1, 0.4), (2, 0.8), (3, 2.0)):
        turn = make_turn(conversation, sequence, "agent", "Hello")
        Turn.objects.filter(pk=turn.pk).update(e2e_latency=seconds, llm_ttft=seconds / 2)
    make_turn(conversation, 4, "user", "Hi")  # a visitor's line carries no figures
    page = text(admin_client.get(reverse(REPORT)))
    assert "<dt>Median end-to-end latency</dt><dd>0.80 s</dd>" in page
    assert "<dt>Median LLM time to first token</dt><dd>0.40 s</dd>" in page


def test_a_day_without_figures_shows_a_dash(admin_client):
    talk(make_persona(name="Paula"), minutes=1)
    assert [f.name for f in report.latency_fields()] == list(Turn.LATENCY_FIELDS)
    page = text(admin_client.get(reverse(REPORT)))
    assert "<dt>Median end-to-end latency</dt><dd>–</dd>" in page


def test_report_needs_staff_and_the_view_permission(client, django_user_model):
    url = reverse(REPORT)
    assert client.get(url).status_code == 302  # to the admin login
    staff = django_user_model.objects.create_user("editor", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    assert client.get(url).status_code == 200


def test_conversation_list_links_to_the_report(admin_client):
    page = text(admin_client.get(reverse("admin:voice_widget_conversation_changelist")))
    assert f'href="{reverse(REPORT)}"' in page


def test_bar_chart_scales_bars_to_the_largest_value():
    days = [timezone.localdate() - timedelta(days=n) for n in (2, 1, 0)]
    svg = str(report.bar_chart("Conversations", days, [1, 4, 0]))
    heights = [float(h) for h in re.findall(r'class="vw-bar"[^>]*height="([\d.]+)"', svg)]
    assert heights[1] == max(heights) and heights[0] == pytest.approx(heights[1] / 4)
    assert heights[2] == 0
    assert 'role="img"' in svg and 'aria-label="Conversations: highest 4, total 5."' in svg
