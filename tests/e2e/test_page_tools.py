"""A page tool really called: the model's tool call in the worker becomes an RPC to the
visitor's widget in Chromium, the example site's handler runs on the page, and its result is
what the model reads in its next request (README "Page tools")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conversation import LAPTOP, Visit, speech, use_the_doubles, wait_for_ending

pytestmark = [pytest.mark.e2e, pytest.mark.agent]

QUESTION = "Show me the cargo bike."


@pytest.fixture
def visitor(playwright_sync: Any, shop: Any, tmp_path: Any, request: Any):
    visit = Visit(playwright_sync, shop.url, speech(tmp_path, QUESTION), request.node.name, LAPTOP)
    yield visit
    visit.close()


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["json"]["messages"] if m["role"] == "tool"]


def test_the_models_tool_call_runs_on_the_page_and_its_result_reaches_the_model(
    visitor, openai_server
):
    use_the_doubles("ben")
    openai_server.script(
        transcript=QUESTION,
        replies=[
            {"tool": "show_product", "arguments": {"product": "linden-cargo"}},
            "Here is the Linden Cargo.",
        ],
        default_reply="Sorry, I cannot show that.",
    )
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("active")

    # The example site's handler scrolled to the cargo bike and marked it.
    visitor.page.wait_for_selector("#bike-linden-cargo.card-shown", timeout=60_000)
    assert visitor.wait_for_caption("agent", 2)[1] == "Here is the Linden Cargo."
    offered = [tool["function"]["name"] for tool in openai_server.requests[0]["json"]["tools"]]
    assert "show_product" in offered
    assert tool_messages(openai_server.requests[1]) == ["Shown on this page: Linden Cargo."]
    visitor.click(".end")
    assert wait_for_ending().end_reason == "client_end"


def test_a_tool_the_page_did_not_register_is_an_error_the_model_reads(visitor, openai_server):
    use_the_doubles(
        "ben",
        page_tools=[{"name": "open_cart", "description": "Open the visitor's cart."}],
    )
    openai_server.script(
        transcript=QUESTION,
        replies=[{"tool": "open_cart", "arguments": {}}, "Sorry, I cannot open it."],
    )
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("active")

    assert visitor.wait_for_caption("agent", 2, timeout=60)[1] == "Sorry, I cannot open it."
    assert tool_messages(openai_server.requests[1]) == ["This page has no tool open_cart."]
    visitor.click(".end")
    assert wait_for_ending().end_reason == "client_end"
