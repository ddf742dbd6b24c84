"""A persona's daily budget: new sessions are refused with 429 ``budget_exhausted`` once today's
total reaches it, and not before; conversations in progress go on; the day is TIME_ZONE's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from tests.api_support import (
    assert_refused,
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
    post_json,
)
from tests.factories import make_conversation, make_persona
from voice_widget.budget import daily_budget_refusal, local_day_bounds, spent_today
from voice_widget.models import BudgetUnit, Conversation, ConversationStatus

URL = "/voice-widget/api/sessions/"
ROOT = Path(__file__).resolve().parent.parent

# One conversation's usage: 1,000 characters of Cartesia sonic-2 at $0.05/1K = $0.05.
PRICES = {"cartesia/sonic-2": {"per_1k_characters": "0.05"}}
FIVE_CENTS = {
    "models": [
        {"type": "tts_usage", "provider": "Cartesia", "model": "sonic-2", "characters_count": 1000}
    ]
}


@pytest.fixture
def priced(settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "PRICES": PRICES}


def start(client, slug):
    return post_json(client, URL, {"persona": slug})


def ended(persona, *, usage=None, minutes=0.0, created_at=None):
    now = timezone.now()
    conversation = make_conversation(
        persona,
        status=ConversationStatus.ENDED,
        usage=usage or {},
        started_at=now - timedelta(minutes=minutes),
        ended_at=now,
    )
    if created_at is not None:  # auto_now_add: moved afterwards
        Conversation.objects.filter(pk=conversation.pk).update(created_at=created_at)
    return conversation


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker_alive")]


def test_money_budget_refuses_at_the_limit_and_not_before(client, priced, caplog):
    persona = make_persona(daily_budget=Decimal("0.10"))
    ended(persona, usage=FIVE_CENTS)
    assert start(client, persona.slug).status_code == 201  # $0.05 of $0.10
    ended(persona, usage=FIVE_CENTS)
    count = Conversation.objects.count()
    response = start(client, persona.slug)  # $0.10 of $0.10
    assert_refused(response, 429, "budget_exhausted", conversations=count)
    assert "0.1000 of 0.10 USD" in response.json()["detail"]
    assert f"persona {persona.slug}: daily budget reached (0.1000 of 0.10 USD)" in caplog.text


def test_avatar_minutes_and_a_self_hosted_model_count_through_the_personas_snapshot(
    client, settings
):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "PRICES": {
            "bey": {"per_minute": "0.10"},
            "openai_compatible/llama3.1": {"input_per_1m": "1000", "output_per_1m": "1000"},
        },
    }
    persona = make_persona(
        avatar_provider="bey",
        avatar_id="avatar-1",
        llm_provider="openai_compatible",
        llm_model="llama3.1",
        llm_base_url="http://127.0.0.1:11434/v1",
        daily_budget=Decimal("0.50"),
    )
    # The plugin names the server's host; the snapshot says it is the persona's model.
    llm_row = {
        "type": "llm_usage",
        "provider": "127.0.0.1:11434",
        "model": "llama3.1",
        "input_tokens": 100,
        "output_tokens": 100,
    }  # 200 tokens × $1000/1M = $0.20
    conversation = ended(persona, usage={"models": [llm_row]}, minutes=2)
    Conversation.objects.filter(pk=conversation.pk).update(
        agent_joined_at=conversation.started_at - timedelta(minutes=1)
    )  # the avatar: 3 minutes × $0.10 = $0.30
    assert spent_today(persona) == Decimal("0.50")
    assert_refused(start(client, persona.slug), 429, "budget_exhausted", conversations=1)


def test_the_refusal_says_when_midnight_comes(client, priced, settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    persona = make_persona(daily_budget=Decimal("0"))
    response = start(client, persona.slug)
    assert_refused(response, 429, "budget_exhausted")
    _today, midnight = local_day_bounds()
    retry_after = int(response["Retry-After"])
    assert abs(retry_after - (midnight - timezone.now()).total_seconds()) < 5
    assert "Pacific/Auckland" in response.json()["detail"]


def test_minutes_budget_counts_ended_and_still_talking_conversations(client):
    persona = make_persona(daily_budget=Decimal("5"), daily_budget_unit=BudgetUnit.MINUTES)
    ended(persona, minutes=3)
    talking = make_conversation(
        persona,
        status=ConversationStatus.ACTIVE,
        started_at=timezone.now() - timedelta(minutes=1),
    )
    make_conversation(persona)  # waiting for the click: no minutes yet
    assert start(client, persona.slug).status_code == 201  # 4 of 5 minutes
    Conversation.objects.filter(pk=talking.pk).update(
        started_at=timezone.now() - timedelta(minutes=2, seconds=1)
    )
    assert start(client, persona.slug).status_code == 429  # 5 of 5
    # The conversation in progress goes on: the budget only stops new ones.
    talking.refresh_from_db()
    assert talking.status == ConversationStatus.ACTIVE


def test_yesterday_and_other_personas_do_not_count(client, priced):
    persona = make_persona(daily_budget=Decimal("0.05"))
    start_of_today, _tomorrow = local_day_bounds()
    ended(persona, usage=FIVE_CENTS, created_at=start_of_today - timedelta(seconds=1))
    ended(make_persona(), usage=FIVE_CENTS)
    assert start(client, persona.slug).status_code == 201


def test_the_day_starts_at_midnight_in_time_zone(settings, priced):
    settings.TIME_ZONE = "Europe/Berlin"
    persona = make_persona(daily_budget=Decimal("0.05"))
    # 23:30 UTC is 00:30 the next day in Berlin (winter time).
    conversation = ended(persona, usage=FIVE_CENTS)
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=datetime(2026, 1, 14, 23, 30, tzinfo=UTC)
    )
    berlin_morning = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    utc_evening_before = datetime(2026, 1, 14, 22, 59, tzinfo=UTC)  # 23:59 in Berlin
    assert spent_today(persona, berlin_morning) == Decimal("0.05")
    assert daily_budget_refusal(persona, berlin_morning) is not None
    assert spent_today(persona, utc_evening_before) == 0
    settings.TIME_ZONE = "UTC"
    assert spent_today(persona, berlin_morning) == 0  # in UTC it was yesterday


def test_no_budget_never_refuses(client, priced):
    persona = make_persona()
    for _ in range(3):
        ended(persona, usage=FIVE_CENTS)
    assert start(client, persona.slug).status_code == 201


# --- two processes on PostgreSQL ---------------------------------------------------------------

# Each process is a web process of its own (a fresh Django, its own connection) serving one
# session request; the last one plays the worker recording an ending with its usage.
SESSION_REQUEST = """
import json, sys
import django
django.setup()
from django.test import Client
response = Client().post(
    "/voice-widget/api/sessions/", json.dumps({"persona": sys.argv[1]}),
    content_type="application/json",
)
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""
WORKER_ENDING = """
import json, sys
import django
django.setup()
from voice_widget.lifecycle import end_conversation
print(json.dumps(end_conversation(sys.argv[1], "client_end", usage=json.loads(sys.argv[2]))))
"""


def _run(script: str, *args: str) -> dict:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        "VOICE_WIDGET_TEST_PRICES": json.dumps(PRICES),
    }
    done = subprocess.run(
        [sys.executable, "-c", _with_prices(script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _with_prices(script: str) -> str:
    # The processes read the same price table as this one (settings, not shared memory).
    return (
        "import json, os\n"
        "from django.conf import settings\n"
        "import tests.settings as s\n"
        "s.VOICE_WIDGET = {**s.VOICE_WIDGET, 'PRICES': "
        "json.loads(os.environ['VOICE_WIDGET_TEST_PRICES'])}\n" + script
    )


def _both_at_once(slug: str) -> list[int]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _n: _run(SESSION_REQUEST, slug), range(2)))
    return [result["status"] for result in results]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").split(":")[0] not in ("postgres", "postgresql"),
    reason="needs a database that other processes share (PostgreSQL, DATABASE_URL)",
)
def test_two_processes_refuse_at_the_limit_and_not_before_on_postgresql(priced):
    assert connection.vendor == "postgresql"
    persona = make_persona(daily_budget=Decimal("0.10"))
    ended(persona, usage=FIVE_CENTS)

    # $0.05 of $0.10: both web processes, asked at once, start a conversation.
    assert _both_at_once(persona.slug) == [201, 201]
    first = Conversation.objects.filter(persona=persona).open().first()

    # A worker process records that conversation's ending with its usage: $0.10 of $0.10.
    assert _run(WORKER_ENDING, str(first.pk), json.dumps(FIVE_CENTS)) is True

    # Both web processes see it at once: refused, with the code the widget maps.
    refused = [_run(SESSION_REQUEST, persona.slug) for _ in range(2)]
    assert [r["status"] for r in refused] == [429, 429]
    assert {r["body"]["error"] for r in refused} == {"budget_exhausted"}
    # The other conversation started before the limit goes on.
    assert Conversation.objects.filter(persona=persona).open().count() == 1
