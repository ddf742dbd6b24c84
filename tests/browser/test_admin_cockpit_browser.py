"""The editor's cockpit in real headless Chromium: an editor opens a persona, tries it on
its change page (up to the session request: no LiveKit server is reachable here), edits
the prompt, sees the new version and its diff, and restores the old one. Screenshots at a
laptop (1366×600) and a phone (390×844) size go to test-artifacts/browser/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import ARTIFACTS
from tests.factories import make_heartbeat, make_persona
from voice_widget.conf import vw_settings
from voice_widget.models import Conversation

pytestmark = pytest.mark.browser

PASSWORD = "editor-pass-123"
OLD_PROMPT = "You are Ben of Linden Bikes. Answer in one or two short sentences."
NEW_PROMPT = "You are Ben of Linden Bikes. Answer in one or two short, cheerful sentences."
SIZES = {"laptop": {"width": 1366, "height": 600}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def editor(live_server: Any) -> Any:
    return get_user_model().objects.create_superuser("edna", "edna@example.com", PASSWORD)


def logged_in(browser: Any, live_server: Any, viewport: dict[str, int]) -> Iterator[Any]:
    context = browser.new_context(viewport=viewport, locale="en-US")
    context.grant_permissions(["microphone"], origin=live_server.url)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "edna")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    # The widget's end beacon must not reach the server while the database is flushed.
    context.route("**/*", lambda route: route.abort())
    page.goto("about:blank")
    context.close()


@pytest.fixture(params=list(SIZES))
def editor_page(request: Any, browser: Any, live_server: Any, editor: Any) -> Iterator[Any]:
    page_iter = logged_in(browser, live_server, SIZES[request.param])
    page = next(page_iter)
    page.size_name = request.param
    page.live_url = live_server.url
    yield page
    next(page_iter, None)


def shot(page: Any, name: str, locator: str | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{page.size_name}.png"
    if locator:
        page.locator(locator).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))


def test_editor_tries_edits_and_restores_a_persona(editor_page, editor):
    page = editor_page
    make_heartbeat(agent_name=vw_settings.AGENT_NAME)  # a worker is running
    persona = make_persona(
        name="Ben", slug="ben", instructions=OLD_PROMPT, preview_mode="none", position="floating"
    )
    change = f"{page.live_url}/admin/voice_widget/persona/{persona.pk}/change/"
    page.goto(change)

    # Try it here: the widget for this persona, inline on the change page.
    panel = page.locator("#try-it")
    assert panel.is_visible()
    assert "1 voice worker is running." in panel.inner_text()
    start = page.locator("#try-it voice-widget .start")
    start.wait_for(state="visible")
    shot(page, "admin-try-it", "#try-it")
    with page.expect_response(
        lambda r: "/voice-widget/api/sessions/" in r.url and r.request.method == "POST"
    ) as session:
        start.click()
    assert session.value.status == 201, session.value.text()
    trial = Conversation.objects.get(pk=session.value.json()["conversation"])
    assert trial.is_test and trial.user == editor
    assert trial.persona_version == persona.history.first()

    # Edit the prompt, save, and see the new version with its word diff.
    page.fill("#id_instructions", NEW_PROMPT)
    page.locator("input[name=_continue]").first.click()
    page.wait_for_load_state()
    versions = page.locator("#versions")
    assert "History: 2 versions" in versions.inner_text()
    assert versions.locator("del.vw-del").first.inner_text().strip() == "short"
    assert versions.locator("ins.vw-ins").first.inner_text().strip() == "short, cheerful"
    versions.scroll_into_view_if_needed()
    shot(page, "admin-history", "#versions")

    # Restore the first version: one click, saved as a third version.
    page.locator("#versions button.vw-restore").first.click()
    page.wait_for_url(f"{change}#versions")
    assert "Restored version 1 as a new version." in page.locator(".messagelist").inner_text()
    assert page.locator("#id_instructions").input_value() == OLD_PROMPT
    assert "History: 3 versions" in page.locator("#versions").inner_text()
    persona.refresh_from_db()
    assert persona.instructions == OLD_PROMPT
    page.locator("#versions").scroll_into_view_if_needed()
    shot(page, "admin-restored")
    # A version's own page: that version in full, and what changed since.
    page.locator("#versions a", has_text="2").first.click()
    page.wait_for_url("**/versions/*/")
    page.wait_for_load_state()
    assert "Differences from the persona now" in page.content()
    assert page.locator(".vw-changes del.vw-del").first.inner_text().strip() == "short, cheerful"
    shot(page, "admin-version")
    page.go_back()
    assert page.js_errors == []

    # The versions panel fits the phone's width (no sideways scrolling of the page).
    width = page.evaluate("() => document.querySelector('#versions').scrollWidth")
    assert width <= page.viewport_size["width"] or page.size_name == "laptop"


def test_change_page_says_how_to_start_a_worker_when_none_runs(browser, live_server, editor):
    pages = logged_in(browser, live_server, SIZES["laptop"])
    page = next(pages)
    page.size_name = "laptop"
    persona = make_persona(name="Ben", slug="ben", preview_mode="none")
    page.goto(f"{live_server.url}/admin/voice_widget/persona/{persona.pk}/change/")
    warning = page.locator("[data-testid=no-worker]")
    assert warning.is_visible()
    assert "python manage.py run_voice_agent dev" in warning.inner_text()
    shot(page, "admin-no-worker", "#try-it")
    next(pages, None)
