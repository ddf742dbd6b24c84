"""Settings for end-to-end runs: the test process and the worker share one SQLite FILE.

The worker's job processes read personas and write transcripts through the ORM, so they
must see the database pytest-django created. Both use ``$VOICE_WIDGET_E2E_DB`` (default
``/tmp/voice-widget-e2e/db.sqlite3``): as the database's ``NAME`` (the worker) and as its
``TEST["NAME"]`` (pytest-django creates and migrates that very file, and deletes it at the
end). LiveKit comes from the ``LIVEKIT_*`` environment variables when they are set, so the
worker subprocess is pointed at the server double by its environment.
"""

import os
from pathlib import Path

from tests.settings import *  # noqa: F403
from tests.settings import VOICE_WIDGET

E2E_DB = Path(os.environ.get("VOICE_WIDGET_E2E_DB") or "/tmp/voice-widget-e2e/db.sqlite3")
E2E_DB.parent.mkdir(parents=True, exist_ok=True)

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(E2E_DB),
        "TEST": {"NAME": str(E2E_DB)},
        "OPTIONS": {
            # Several processes write (the live server, the worker and its jobs): wait for
            # locks instead of failing, take the write lock up front, and let readers read
            # while one writes.
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}

VOICE_WIDGET = {
    **VOICE_WIDGET,
    # Short, so that a tab closed for good is ended by the worker within the tests' waits
    # (and long enough for a reload in Chromium to come back).
    "RESUME_WINDOW": 8,
    **{
        name: os.environ[name]
        for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
        if os.environ.get(name)
    },
}
if os.environ.get("VOICE_WIDGET_AGENT_NAME"):
    VOICE_WIDGET["AGENT_NAME"] = os.environ["VOICE_WIDGET_AGENT_NAME"]
# The live page's channel layer: channels_redis when REDIS_URL is set (the test of the live
# page starts a Redis of its own inside the namespace), else the polling mode.
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
        }
    }
