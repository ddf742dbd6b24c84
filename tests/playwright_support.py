"""Playwright's sync API for the tests that drive Chromium (browser and end-to-end)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def chromium_path() -> str | None:
    """Debian's Chromium (``VOICE_WIDGET_CHROMIUM`` names another binary), or None."""
    explicit = os.environ.get("VOICE_WIDGET_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@contextlib.contextmanager
def sync_playwright_with_orm() -> Iterator[Any]:
    """Playwright's sync API. Its event loop runs in the test's thread, where the tests' own
    ORM calls would then be refused as "async unsafe": they are allowed while it runs."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
