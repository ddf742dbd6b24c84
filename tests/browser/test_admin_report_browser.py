"""The conversation report in real headless Chromium, at a laptop (1366×600) and a phone
(390×844): readable without sideways scrolling of the page, and usable with the keyboard."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.browser.conftest import ARTIFACTS
from tests.factories import make_conversation, make_persona
from voice_widget.models import Conversation, ConversationStatus, EndReason

pytestmark = pytest.mark.browser

PASSWORD = "editor-pass-123"
SIZES = {"laptop": {"width": 1366, "height": 600}, "phone": {"width": 390, "height": 844}}
REASONS = [EndReason.CLIENT_END, EndReason.PARTICIPANT_LEFT, EndReason.MAX_DURATION]


def seed_a_month() -> None:
    """Two personas with a few conversations a day, each with recorded usage."""
    rng = random.Random(15)
    paula = make_persona(name="Paula", slug="paula", daily_budget=Decimal("5.00"))
    ben = make_persona(name="Ben", slug="ben")
    now = timezone.now()
    for days_ago in range(30):
        for persona in (paula, ben):
            for _ in range(rng.randint(0, 5)):
                minutes = rng.uniform(0.5, 8)
                conversation = make_conversation(
                    persona,
                    status=ConversationStatus.ENDED,
                    end_reason=rng.choice(REASONS),
                    usage={
                        "models": [
                            {
                                "type": "llm_usage",
                                "provider": "api.openai.com",
                                "model": "gpt-4o-mini",
                                "input_tokens": int(minutes * 3000),
                                "output_tokens": int(minutes * 300),
                            },
                            {
                                "type": "tts_usage",
                                "provider": "Cartesia",
                                "model": "sonic-2",
                                "characters_count": int(minutes * 700),
                            },
                            {
                                "type": "stt_usage",
                                "provider": "Deepgram",
                                "model": "nova-3",
                                "audio_duration": minutes * 30,
                            },
                        ]
                    },
                )
                start = now - timedelta(days=days_ago, minutes=minutes + 1)
                Conversation.objects.filter(pk=conversation.pk).update(
                    created_at=start,
                    started_at=start + timedelta(seconds=20),
                    ended_at=start + timedelta(seconds=20, minutes=minutes),
                )


def open_report(browser: Any, live_server: Any, viewport: dict[str, int]) -> Any:
    if not get_user_model().objects.filter(username="editor").exists():
        get_user_model().objects.create_superuser("editor", "editor@example.com", PASSWORD)
    context = browser.new_context(viewport=viewport, locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/voice_widget/conversation/report/")
    return page


@pytest.mark.parametrize("size", list(SIZES))
def test_report_is_readable_at_laptop_and_phone_sizes(browser, live_server, size):
    seed_a_month()
    viewport = SIZES[size]
    page = open_report(browser, live_server, viewport)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-report-{size}.png"), full_page=True)
    # The page itself never scrolls sideways; only the days' table may, inside its box.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    charts = page.locator("svg.vw-chart")
    assert charts.count() == 6
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert box["height"] >= 60  # still a chart, not a sliver
    # The first screen shows the choice and the first persona's totals.
    totals = page.locator(".vw-report-totals").first.bounding_box()
    assert totals["y"] < viewport["height"]
    page.context.close()


def test_report_period_and_persona_are_chosen_with_the_keyboard(browser, live_server):
    seed_a_month()
    page = open_report(browser, live_server, SIZES["laptop"])
    page.focus("#vw-days")
    page.keyboard.press("Home")  # the first period: 7 days
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "vw-persona"
    page.keyboard.press("ArrowDown")  # the first persona by name: Ben
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Show button
    page.wait_for_url("**/report/?days=7&persona=*")
    assert page.locator("svg.vw-chart").count() == 3
    assert page.locator(".vw-report-persona h2").inner_text() == "Ben"
    assert page.locator("svg.vw-chart").first.locator("rect.vw-bar").count() == 7
    # The days' table takes focus, so a keyboard can scroll it on a narrow screen.
    assert page.locator(".vw-report-table").first.get_attribute("tabindex") == "0"
    page.context.close()
