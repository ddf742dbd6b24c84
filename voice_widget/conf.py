"""Settings for django-voice-widget, read lazily from ``settings.VOICE_WIDGET``.

Every key has a documented default here. Nothing is read at import time, so
``override_settings`` works in tests and the same settings serve both the web
process and the worker. This module imports no models.

LiveKit credentials fall back to the environment variables LiveKit's own tools
use (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``), and, only
when ``DEBUG`` is on, to the defaults of ``livekit-server --dev``: the URL always, the key
and secret only for a server on this machine (a LiveKit Cloud project would refuse every
token signed with them; ``voice_widget.E010`` says so instead).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "VOICE_WIDGET"

#: The credentials ``livekit-server --dev`` starts with.
DEV_LIVEKIT_URL = "ws://127.0.0.1:7880"
DEV_LIVEKIT_API_KEY = "devkey"
DEV_LIVEKIT_API_SECRET = "secret"

LIVEKIT_KEYS = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")

DEFAULTS: dict[str, Any] = {
    # Where the LiveKit server is and how to sign tokens for it. ``None`` means
    # "use the environment variable of the same name, or the dev default in DEBUG".
    "LIVEKIT_URL": None,
    "LIVEKIT_API_KEY": None,
    "LIVEKIT_API_SECRET": None,
    # The agent name the worker registers and every token dispatches.
    "AGENT_NAME": "voice-widget",
    # Lifetime of a participant token in seconds (it only needs to last until joining).
    "TOKEN_TTL": 600,
    # DRF throttle rates for the session endpoint: per IP for anonymous visitors,
    # per user for logged-in ones.
    "THROTTLE_RATES": {"anon": "10/minute", "user": "30/minute"},
    # Conversations of one persona that one anonymous visitor (by IP address) or one user
    # may hold while nobody has joined their rooms; ``None`` switches the limit off.
    "MAX_UNJOINED_PER_VISITOR": 2,
    # Page context a browser may send (bytes of JSON, nesting depth).
    "MAX_CONTEXT_BYTES": 8 * 1024,
    "MAX_CONTEXT_DEPTH": 4,
    # How long a signed context produced by the template tag stays valid (seconds).
    "SIGNED_CONTEXT_MAX_AGE": 60 * 60 * 12,
    # Origins allowed for every persona, in addition to each persona's own list.
    "ALLOWED_ORIGINS": [],
    # Room limits written into each token's RoomConfiguration.
    "ROOM_EMPTY_TIMEOUT": 60,
    "ROOM_DEPARTURE_TIMEOUT": 10,
    "ROOM_MAX_PARTICIPANTS": 4,
    # Worker heartbeats: how often the worker writes one, and how old one may be
    # before the health endpoint stops counting that worker.
    "HEARTBEAT_INTERVAL": 5,
    "HEARTBEAT_TIMEOUT": 20,
    # The worker's budget for a failing provider (speech recognition, language model, speech
    # synthesis): retries of one request after its first try, the pause between retries and
    # how long one try may take (seconds; livekit-agents' APIConnectOptions), and how many
    # failed turns in a row end the conversation with ``error`` (the visitor is told after
    # each; livekit-agents' own limit, max_unrecoverable_errors, is set one above it).
    "PROVIDER_MAX_RETRY": 2,
    "PROVIDER_RETRY_INTERVAL": 1.0,
    "PROVIDER_TIMEOUT": 10.0,
    "PROVIDER_FAILURES_TO_END": 2,
    # How long a visitor's acceptance of a persona's consent notice is remembered in their
    # browser (seconds), and accepted by the session endpoint.
    "CONSENT_MAX_AGE": 60 * 60 * 24 * 30,
    # Prices for the cost estimates, over the list prices in voice_widget.providers
    # (DEFAULT_PRICES): {"provider/model": {"input_per_1m": "0.15", ...}}; None removes one.
    "PRICES": {},
    # The currency of PRICES and of personas' money budgets, as shown in admin.
    "CURRENCY": "USD",
    # Days a conversation's transcript and page context are kept; ``manage.py
    # purge_voice_widget`` deletes older ones. None keeps them forever.
    "RETENTION_DAYS": None,
    # Seconds after the visitor's page goes away (a reload, another page of the site) during
    # which the same browser tab may rejoin the conversation; 0 ends it when the page goes.
    "RESUME_WINDOW": 120,
}


def is_local_url(url: str | None) -> bool:
    """True for a URL on this machine (localhost, 127.0.0.1, ::1): livekit-server --dev."""
    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


class VoiceWidgetSettings:
    """Attribute access to the merged ``VOICE_WIDGET`` settings, e.g. ``vw_settings.AGENT_NAME``."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {name!r}")
        if name in LIVEKIT_KEYS:
            return self._livekit_value(name)
        return _user_settings().get(name, DEFAULTS[name])

    def _livekit_value(self, name: str) -> str | None:
        value = _user_settings().get(name) or _env(name)
        if value:
            return str(value).strip()
        if not settings.DEBUG:
            return None
        if name == "LIVEKIT_URL":
            return DEV_LIVEKIT_URL
        if not is_local_url(self.LIVEKIT_URL):
            return None
        return DEV_LIVEKIT_API_KEY if name == "LIVEKIT_API_KEY" else DEV_LIVEKIT_API_SECRET

    @property
    def livekit_configured(self) -> bool:
        """True when URL, key and secret all have a value (set, or the DEBUG defaults for a
        local server)."""
        return all(getattr(self, key) for key in LIVEKIT_KEYS)

    @property
    def unknown_keys(self) -> list[str]:
        return sorted(set(_user_settings()) - set(DEFAULTS))


def settings_problem() -> str | None:
    """Why ``VOICE_WIDGET`` cannot be read (it is not a mapping), or None. The system checks
    report it as ``voice_widget.E005``; reading a setting then raises ``ImproperlyConfigured``."""
    value = getattr(settings, SETTING_NAME, None)
    if value is None or isinstance(value, Mapping):
        return None
    return f"{SETTING_NAME} must be a dict, not {type(value).__name__} ({value!r:.60})."


@cache
def _user_settings() -> dict[str, Any]:
    problem = settings_problem()
    if problem:
        raise ImproperlyConfigured(problem)
    return dict(getattr(settings, SETTING_NAME, None) or {})


@receiver(setting_changed)
def _reset_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        _user_settings.cache_clear()


vw_settings = VoiceWidgetSettings()
