"""DOMContentLoaded and load of the example's home page with the widget and without it.

One run: migrate a temporary SQLite database, seed the example personas, start the example
site under daphne on a free 127.0.0.1 port (settings ``benchmarks.page_load_settings``: a
urlconf of the benchmark's own adds the same page without ``{% voice_widget %}`` and serves
the static files), then load each page ``--loads`` times in headless Chromium (Playwright,
/usr/bin/chromium), alternating, each in a fresh browser context (an empty cache, as on a
first visit). Reads the Navigation Timing entry and prints the medians and the ratio
with/without. Not a test: numbers depend on the machine.

    .venv/bin/python benchmarks/bench_page_load.py [--loads 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_sessions import free_port, start_server, stop_server  # noqa: E402

PAGES = {"with the widget": "/", "without it": "/bench/without-widget/"}
CHROMIUM = "/usr/bin/chromium"

#: Milliseconds from the navigation's start to the end of DOMContentLoaded and of load.
TIMING = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return [nav.domContentLoadedEventEnd, nav.loadEventEnd];
}"""


def setup_database(env: dict[str, str]) -> None:
    script = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0, interactive=False);"
        "call_command('seed_demo', verbosity=0)"
    )
    subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


def load_once(browser, url: str) -> tuple[float, float]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        page.wait_for_function(
            "() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0"
        )
        if url.endswith("/") and "bench" not in url:
            # The widget did draw (so the page measured is the page a visitor gets).
            page.wait_for_function(
                "() => customElements.get('voice-widget') !== undefined"
                " && document.querySelector('voice-widget').shadowRoot !== null"
            )
        dom_content_loaded, load = page.evaluate(TIMING)
        return dom_content_loaded, load
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.page_load_settings",
            "BENCH_DB": str(Path(tmp) / "bench.sqlite3"),
            "PYTHONPATH": str(ROOT),
        }
        setup_database(env)
        port = free_port()
        server = start_server(env, port)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in PAGES}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                try:
                    for path in PAGES.values():  # warm-up: server imports, first queries
                        load_once(browser, f"http://127.0.0.1:{port}{path}")
                    for _ in range(args.loads):
                        for name, path in PAGES.items():
                            results[name].append(
                                load_once(browser, f"http://127.0.0.1:{port}{path}")
                            )
                finally:
                    browser.close()
        finally:
            stop_server(server)

    print(
        f"machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    medians = {}
    for name, timings in results.items():
        dcl = statistics.median(t[0] for t in timings)
        load = statistics.median(t[1] for t in timings)
        medians[name] = (dcl, load)
        print(
            f"home page {name} ({args.loads} cold loads, daphne on 127.0.0.1): "
            f"DOMContentLoaded {dcl:.0f} ms, load {load:.0f} ms (medians)"
        )
    (with_dcl, with_load), (without_dcl, without_load) = medians.values()
    print(
        f"ratio with/without: DOMContentLoaded {with_dcl / without_dcl:.2f}x, "
        f"load {with_load / without_load:.2f}x"
    )


if __name__ == "__main__":
    main()
