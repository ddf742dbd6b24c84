"""An editor tries a persona from its admin change page: the widget there and the real worker
meet in a room of the LiveKit double, and the conversation is recorded as that editor's test,
with the persona version it ran with."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conversation import (
    LAPTOP,
    Visit,
    latest_conversation,
    silence,
    turns,
    use_the_doubles,
    wait_until,
)
from voice_widget.models import Persona

pytestmark = [pytest.mark.e2e, pytest.mark.agent]

GREETING = "Hi, I'm Ben from Linden Bikes. What can I help you with?"
PASSWORD = "editor-pass-123"


@pytest.fixture
def editor_visit(playwright_sync: Any, shop: Any, tmp_path: Any, request: Any):
    editor = get_user_model().objects.create_superuser("edna", "edna@example.com", PASSWORD)
    visitor = Visit(playwright_sync, shop.url, silence(tmp_path), request.node.name, LAPTOP)
    page = visitor.page
    page.goto(f"{shop.url}/admin/login/")
    page.fill("#id_username", "edna")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{shop.url}/admin/")
    yield visitor, editor
    visitor.close()


def test_editor_talks_to_the_persona_from_its_change_page(editor_visit, openai_server, worker):
    visitor, editor = editor_visit
    use_the_doubles("ben")
    ben = Persona.objects.get(slug="ben")
    visitor.open(f"/admin/voice_widget/persona/{ben.pk}/change/")
    assert "voice worker is running" in visitor.page.locator("#try-it").inner_text()

    visitor.click(".start")
    visitor.wait_for_state("active")
    assert visitor.wait_for_caption("agent", 1)[0] == GREETING
    visitor.screenshot("admin-try-it-active-laptop")

    conversation = latest_conversation()
    assert conversation.is_test and conversation.user == editor
    assert conversation.persona_version == ben.history.first()
    wait_until(lambda: turns(conversation), 10, "the greeting in the transcript")
    assert turns(conversation)[0] == ("agent", GREETING)
