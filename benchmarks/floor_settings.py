"""Settings for benchmarks/bench_session_floor.py: benchmarks.settings plus the benchmark's
own reference views, SQLite (``BENCH_DB``) or PostgreSQL (``BENCH_DATABASE_URL``; connections
kept open under WSGI, pooled under ASGI), and visitors told apart by ``X-Forwarded-For``
(so the per-visitor unjoined cap stays on and every request is a new visitor)."""

import os

import environ

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import DATABASES, REST_FRAMEWORK, VOICE_WIDGET

ROOT_URLCONF = "benchmarks.floor_urls"
if os.environ.get("BENCH_DATABASE_URL"):
    DATABASES = {"default": environ.Env.db_url_config(os.environ["BENCH_DATABASE_URL"])}
    # Under WSGI each connection is kept (one thread serves every request). Under ASGI
    # (BENCH_DB_POOL=on, set per server by the benchmark) Django runs each request's sync
    # code on a thread of its own, so a kept connection is never reused and lingers until
    # garbage collection (with 60 the runs ran out of PostgreSQL connections, "too many
    # clients already"): there the connections come from Django's pool, as in the example site.
    if os.environ.get("BENCH_DB_POOL") == "on":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 10}
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
REST_FRAMEWORK = {**REST_FRAMEWORK, "NUM_PROXIES": 1}
VOICE_WIDGET = {**VOICE_WIDGET, "MAX_UNJOINED_PER_VISITOR": 2}
