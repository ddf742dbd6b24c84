"""Settings for benchmarks/bench_sessions.py: the example site, production-shaped.

DEBUG off, a SQLite file named by ``BENCH_DB``, throttles raised far above what the
benchmark sends (so every request does the full work, throttle bookkeeping included,
and none is refused), and LiveKit credentials for signing (no LiveKit server is
contacted: creating a session only signs a token).
"""

import os

from example_site.settings import *  # noqa: F403

DEBUG = False
SECRET_KEY = "benchmark-only-secret-key-not-used-anywhere-else-0123456789"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BENCH_DB"],
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
VOICE_WIDGET = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "APIbenchmark",
    "LIVEKIT_API_SECRET": "benchmark-secret-that-is-long-enough-for-livekit-0123",
    "AGENT_NAME": "voice-widget-bench",
    "THROTTLE_RATES": {"anon": "1000000/minute", "user": "1000000/minute"},
    # Every request comes from one address, and nobody joins.
    "MAX_UNJOINED_PER_VISITOR": None,
    # No worker runs: the heartbeat written at setup stands for one for the whole run.
    "HEARTBEAT_TIMEOUT": 24 * 60 * 60,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
