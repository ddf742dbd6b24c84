"""The widget's layouts in real Chromium: the floating panel, compact and expanded; inline; and
full page (the example site's help page). At a laptop's 1366×600 and a phone's 390×844, before
and after scrolling, by mouse and by keyboard. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import persona
from tests.browser.test_widget_browser import (
    CONTRAST_PROBE,
    ROOM_DOUBLE,
    TIMEOUT,
    VIEWPORTS,
    WIDGET,
    assert_in_viewport,
    scroll_to,
    wait_for_state,
)

pytestmark = pytest.mark.browser

CONVERSATION = """
() => {
  const r = window.roomDouble;
  r.set({'lk.agent.state': 'listening'});
  const lines = [
    ['agent', "Hi, I'm Ben from Linden Bikes. What can I help you with?"],
    ['user', 'Can I test ride the Linden Cargo on Saturday?'],
    ['agent', 'Yes: Saturdays from half past nine to three, no appointment needed.'],
    ['user', 'Do you have it in a smaller frame?'],
    ['agent', 'The Cargo comes in one size that fits riders from 1.55 to 1.95 metres.'],
    ['user', 'And how long is the warranty?'],
    ['agent', 'Ten years on the frame, two on the parts, and the first service is free.'],
  ];
  lines.forEach(([role, text], i) => r.emit('transcription', {streamId: 's' + i,
    segmentId: 'SG_' + i, role, delta: text, done: true, final: true}));
}
"""

BOX = """
(selector) => {
  const el = document.querySelector('voice-widget').shadowRoot.querySelector(selector);
  const r = el.getBoundingClientRect();
  return {x: r.left, y: r.top, width: r.width, height: r.height, bottom: r.bottom,
          right: r.right, viewportWidth: innerWidth, viewportHeight: innerHeight};
}
"""

FOCUSED = (
    "() => { const a = document.activeElement;"
    " return a && a.tagName === 'VOICE-WIDGET' && a.shadowRoot.activeElement"
    " ? a.shadowRoot.activeElement.className : null; }"
)

FOCUS_IN_CARD = (
    "() => { const root = document.querySelector('voice-widget').shadowRoot;"
    " const a = root.activeElement; return Boolean(a) && root.querySelector('.card').contains(a); }"
)


def box(page: Any, selector: str) -> dict[str, float]:
    return page.evaluate(BOX, selector)


def wait_for_last_caption_in_view(page: Any) -> None:
    """The captions scroll (smoothly) to the newest line."""
    page.wait_for_function(
        "() => { const root = document.querySelector('voice-widget').shadowRoot;"
        " const box = root.querySelector('.captions').getBoundingClientRect();"
        " const line = root.querySelector('.line:last-child').getBoundingClientRect();"
        " return line.bottom <= box.bottom + 1 && line.top >= box.top - 1; }",
        timeout=TIMEOUT,
    )


def open_floating_conversation(page: Any, width: int, height: int) -> None:
    page.page.set_viewport_size({"width": width, "height": height})
    page.goto("/")
    page.page.evaluate(ROOM_DOUBLE)
    page.page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page.page, "active")
    page.page.evaluate(CONVERSATION)
    page.page.locator(f"{WIDGET} .expand").wait_for(state="visible", timeout=TIMEOUT)
    wait_for_last_caption_in_view(page.page)


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_floating_panel_expands_and_collapses_within_the_viewport(
    page, worker_alive, width, height
):
    open_floating_conversation(page, width, height)
    name = f"layout-floating-{width}x{height}"
    expand = page.page.locator(f"{WIDGET} .expand")
    card = page.page.locator(f"{WIDGET} .card")
    assert expand.get_attribute("aria-pressed") == "false"
    assert expand.get_attribute("aria-label") == "Expand the panel"
    assert expand.get_attribute("title") == "Expand the panel"
    assert card.get_attribute("role") is None
    page.screenshot(name + "-compact")
    compact = box(page.page, ".card")
    assert compact["width"] <= (360 if width > 480 else width - 24)
    for selector in (".card", ".end", ".chat-input"):
        assert_in_viewport(page.page, selector, "compact: the controls stay in view")

    expand.click()
    wait_for_last_caption_in_view(page.page)
    assert expand.get_attribute("aria-pressed") == "true"
    assert expand.get_attribute("title") == "Make the panel smaller"
    assert card.get_attribute("role") == "dialog"
    assert card.get_attribute("aria-modal") == "true"
    for where in ("bottom", "top"):
        scroll_to(page.page, where)
        for selector in (".card", ".close", ".expand", ".end", ".mute", ".chat-input"):
            assert_in_viewport(page.page, selector, f"expanded, at the {where} of the page")
        page.screenshot(f"{name}-expanded-{where}")
    expanded = box(page.page, ".card")
    if width <= 480:
        # A phone: the whole screen.
        assert (expanded["x"], expanded["y"]) == (0, 0)
        assert (expanded["right"], expanded["bottom"]) == (width, height)
    else:
        # A laptop: most of it, with a reading width.
        assert 700 <= expanded["width"] <= 800
        assert expanded["height"] == height - 40
    captions = box(page.page, ".captions")
    assert captions["height"] > 196, "the captions take the room (compact: at most 196 px)"
    last_line = page.page.locator(f"{WIDGET} .line").last
    assert "first service is free" in last_line.inner_text()

    expand.click()
    wait_for_last_caption_in_view(page.page)
    assert expand.get_attribute("aria-pressed") == "false"
    assert card.get_attribute("role") is None
    assert box(page.page, ".card")["width"] == compact["width"]
    assert page.console_errors() == []


def test_keyboard_opens_expands_and_escape_closes_back_to_the_launcher(page, worker_alive):
    page.page.set_viewport_size({"width": 1366, "height": 600})
    page.goto("/")
    page.page.evaluate(ROOM_DOUBLE)
    for _ in range(40):
        page.page.keyboard.press("Tab")
        if page.page.evaluate(FOCUSED) == "launcher":
            break
    assert page.page.evaluate(FOCUSED) == "launcher"
    page.page.keyboard.press("Enter")
    wait_for_state(page.page, "active")
    page.page.locator(f"{WIDGET} .expand").wait_for(state="visible", timeout=TIMEOUT)
    for _ in range(12):
        page.page.keyboard.press("Tab")
        if page.page.evaluate(FOCUSED) == "icon-button expand":
            break
    assert page.page.evaluate(FOCUSED) == "icon-button expand"
    page.page.keyboard.press("Enter")
    expand = page.page.locator(f"{WIDGET} .expand")
    assert expand.get_attribute("aria-pressed") == "true"
    assert page.page.evaluate(FOCUSED) == "icon-button expand", "focus stays on the button"
    outline = expand.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid", "a visible focus ring"
    page.screenshot("layout-keyboard-expanded")

    # The expanded panel covers the page: Tab and Shift+Tab stay inside it.
    seen = set()
    for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:
        page.page.keyboard.press(key)
        assert page.page.evaluate(FOCUS_IN_CARD), f"{key} left the expanded panel"
        seen.add(page.page.evaluate(FOCUSED))
    assert {"icon-button expand", "icon-button close", "chat-input"} <= seen

    page.page.keyboard.press("Escape")
    page.page.locator(f"{WIDGET} .launcher").wait_for(state="visible")
    assert page.page.locator(f"{WIDGET} .card").is_hidden()
    assert page.page.evaluate(FOCUSED) == "launcher"
    # Reopened, the panel is as the visitor left it; and so after a reload (for the tab).
    page.page.keyboard.press("Enter")
    assert expand.get_attribute("aria-pressed") == "true"
    page.page.keyboard.press("Escape")
    page.page.reload()
    page.page.wait_for_function(
        "() => { const el = document.querySelector('voice-widget');"
        " return el && el.shadowRoot && !el.shadowRoot.querySelector('.vw').hidden; }"
    )
    page.page.locator(f"{WIDGET} .launcher").click()
    page.page.locator(f"{WIDGET} .expand").wait_for(state="visible", timeout=TIMEOUT)
    assert expand.get_attribute("aria-pressed") == "true"
    assert box(page.page, ".card")["height"] == 600 - 40


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_full_page_help_page(page, worker_alive, width, height):
    page.page.set_viewport_size({"width": width, "height": height})
    page.goto("/help/")
    name = f"layout-fullpage-{width}x{height}"
    assert page.page.locator(f"{WIDGET} .launcher").is_hidden(), "no launcher"
    assert page.page.locator(f"{WIDGET} .expand").is_hidden(), "nothing to expand"
    assert page.page.locator(f"{WIDGET} .close").is_hidden()
    page.screenshot(name + "-idle")
    card = box(page.page, ".card")
    assert card["width"] <= 760, "a reading width"
    assert card["bottom"] <= height, "the whole panel is in view below the page's title"
    assert card["height"] >= 360

    page.page.evaluate(ROOM_DOUBLE)
    page.page.locator(f"{WIDGET} .start").click()
    wait_for_state(page.page, "active")
    page.page.evaluate(CONVERSATION)
    page.page.locator(f"{WIDGET} .chat-input").wait_for(state="visible", timeout=TIMEOUT)
    wait_for_last_caption_in_view(page.page)
    for where in ("top", "bottom"):
        scroll_to(page.page, where)
        page.screenshot(f"{name}-active-{where}")
    scroll_to(page.page, "top")
    for selector in (".card", ".end", ".mute", ".chat-input", ".captions"):
        assert_in_viewport(page.page, selector, "on the help page")
    captions = box(page.page, ".captions")
    # The captions take the room the rest leaves: more than the compact panel's 196 px
    # where there is room for it (a laptop's 600 px leave about half that).
    assert captions["height"] > (196 if height > 700 else 100), "the captions grow"
    wait_for_last_caption_in_view(page.page)
    # Escape is no way out of a page's main content.
    page.page.locator(f"{WIDGET} .end").focus()
    page.page.keyboard.press("Escape")
    assert page.page.locator(f"{WIDGET} .card").is_visible()
    assert page.console_errors() == []


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_inline_stays_where_the_tag_is_without_an_expand_button(page, worker_alive, width, height):
    page.page.set_viewport_size({"width": width, "height": height})
    page.goto("/bikes/linden-city/")
    page.page.evaluate(ROOM_DOUBLE)
    page.page.locator(f"{WIDGET} .start").click()
    wait_for_state(page.page, "active")
    page.page.locator(f"{WIDGET} .card").scroll_into_view_if_needed()
    assert page.page.locator(f"{WIDGET} .expand").count() == 0, "no layout chunk for inline"
    assert box(page.page, ".card")["width"] <= 440
    overflow = page.page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, "no sideways scrolling"
    page.screenshot(f"layout-inline-{width}x{height}-active")
    scroll_to(page.page, "top")
    page.screenshot(f"layout-inline-{width}x{height}-top")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_expanded_and_full_page_keep_text_contrast_at_least_4_5_to_1(page, worker_alive, theme):
    ben = persona("ben")
    ben.theme = theme
    ben.save()
    selectors = [
        ".name",
        ".status-text",
        ".line[data-role='agent'] .said",
        ".line[data-role='user'] .said",
        ".end",
        ".mute",
    ]
    open_floating_conversation(page, 1366, 600)
    page.page.locator(f"{WIDGET} .expand").click()
    ratios = page.page.evaluate(CONTRAST_PROBE, [*selectors, ".expand", ".close"])
    assert all(ratio >= 4.5 for ratio in ratios.values()), ratios
    page.screenshot(f"layout-floating-expanded-{theme}")
    page.page.locator(f"{WIDGET} .end").click()  # else the help page would rejoin it
    wait_for_state(page.page, "ended")

    page.goto("/help/")
    page.page.evaluate(ROOM_DOUBLE)
    page.page.locator(f"{WIDGET} .start").click()
    wait_for_state(page.page, "active")
    page.page.evaluate(CONVERSATION)
    wait_for_last_caption_in_view(page.page)
    ratios = page.page.evaluate(CONTRAST_PROBE, selectors)
    assert all(ratio >= 4.5 for ratio in ratios.values()), ratios
    page.screenshot(f"layout-fullpage-{theme}")
