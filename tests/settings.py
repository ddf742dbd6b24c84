"""Test settings: the example site, with DEBUG off and fast password hashing.

``DATABASE_URL`` chooses the database (SQLite in memory when unset), which is how
the test command runs the suite once on SQLite and once on PostgreSQL.
"""

import os

import environ

from example_site.settings import *  # noqa: F403

DEBUG = False
SECRET_KEY = "tests-only-secret-key-not-used-anywhere-else"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES = {
    "default": environ.Env.db_url_config(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
}

# A complete, production-shaped LiveKit configuration; tests override it to test the checks.
VOICE_WIDGET = {
    "LIVEKIT_URL": "wss://livekit.test.invalid",
    "LIVEKIT_API_KEY": "APItestkey",
    "LIVEKIT_API_SECRET": "test-secret-that-is-long-enough-for-livekit-0123456789",
    "AGENT_NAME": "voice-widget-test",
}
# Each test process counts throttles in its own memory (tests clear the cache), even when the
# environment has a REDIS_URL for the example site.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
MEDIA_ROOT = "/tmp/voice-widget-test-media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
