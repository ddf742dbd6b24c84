"""Real headless Chromium (Debian's `chromium`, driven by Playwright) against the example site
served by pytest-django's `live_server`. Screenshots go to test-artifacts/browser/.

Without a Chromium binary the browser tests are skipped with the reason; nothing else is.
Set VOICE_WIDGET_CHROMIUM to use another binary.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.cache import cache
from django.core.management import call_command

from tests.factories import make_heartbeat
from tests.playwright_support import chromium_path, sync_playwright_with_orm
from voice_widget.conf import vw_settings
from voice_widget.models import Persona

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Any]:
    """Playwright for the browser tests only: its sync API keeps an event loop running in
    this thread, which other tests (async_to_sync) must not meet, so it stops with this
    package. Meanwhile the tests' own ORM calls would be refused as "async unsafe"."""
    if chromium_path() is None:
        pytest.skip("Chromium not found (apt-get install chromium); browser tests skipped")
    with sync_playwright_with_orm() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_driver: Any) -> Iterator[Any]:
    browser = playwright_driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def denying_browser(playwright_driver: Any) -> Iterator[Any]:
    """A Chromium that answers permission prompts with "Block", as a visitor might."""
    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-ui-for-media-stream"]
    browser = playwright_driver.chromium.launch(
        executable_path=chromium_path(), args=[*args, "--deny-permission-prompts"]
    )
    yield browser
    browser.close()


class PageWithLog:
    """A Playwright page plus what its console said, and a screenshot helper."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        page.on("console", lambda message: self.console.append((message.type, message.text)))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def goto(self, path: str) -> None:
        """Open a page with a widget and wait until it is drawn (its labels loaded)."""
        self.page.goto(self.base_url + path)
        self.page.wait_for_function(
            "() => customElements.get('voice-widget') !== undefined"
            " && [...document.querySelectorAll('voice-widget')]"
            ".every((el) => !el.shadowRoot.querySelector('.vw').hidden)"
        )

    def screenshot(self, name: str, **kwargs: Any) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), **kwargs)
        return path

    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.errors


@pytest.fixture
def site(live_server: Any, settings: Any) -> Any:
    """The example site with its shop data and the demo personas, and a clean throttle."""
    settings.DEBUG = False
    demo_data = importlib.import_module("example_site.shop.migrations.0002_demo_data")
    demo_data.add_demo_data(apps, None)  # live_server's database is flushed between tests
    call_command("seed_demo", verbosity=0)
    cache.clear()
    return live_server


@pytest.fixture
def worker_alive(site: Any) -> None:
    """A fresh worker heartbeat, so the health endpoint reports an agent."""
    make_heartbeat(agent_name=vw_settings.AGENT_NAME)


@pytest.fixture
def page(browser: Any, site: Any) -> Iterator[PageWithLog]:
    context = browser.new_context(viewport={"width": 1200, "height": 820}, locale="en-US")
    context.grant_permissions(["microphone"], origin=site.url)
    wrapped = PageWithLog(context.new_page(), site.url)
    yield wrapped
    # Closing the page sends the widget's end beacon; the served site must not be writing to
    # the database while the test's database is flushed, so requests stop here.
    context.route("**/*", lambda route: route.abort())
    wrapped.page.goto("about:blank")
    wrapped.page.wait_for_timeout(150)
    context.close()


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def persona(slug: str) -> Persona:
    return Persona.objects.get(slug=slug)
