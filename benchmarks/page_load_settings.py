"""Settings for benchmarks/bench_page_load.py: those of bench_sessions.py, with a urlconf
that adds the example's home page without the widget, and that page's template."""

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import BASE_DIR, TEMPLATES

ROOT_URLCONF = "benchmarks.page_load_urls"
TEMPLATES = [
    {**TEMPLATES[0], "DIRS": [*TEMPLATES[0]["DIRS"], BASE_DIR / "benchmarks" / "templates"]}
]
