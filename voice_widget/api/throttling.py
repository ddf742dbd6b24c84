"""DRF throttles for the session endpoint, with rates from ``VOICE_WIDGET["THROTTLE_RATES"]``.

Rates are read when a throttle is instantiated, i.e. on every request, so a settings
change (or ``override_settings`` in a test) applies at once. The cache scopes are our
own, so the host project's DRF throttles and ours never share a counter.
"""

from __future__ import annotations

from typing import Any

from django.utils.crypto import salted_hmac
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, UserRateThrottle

from ..conf import vw_settings


class _SettingsRateMixin:
    #: Key in ``THROTTLE_RATES``; ``None`` there switches the throttle off.
    rate_key = ""

    def get_rate(self) -> str | None:
        return (vw_settings.THROTTLE_RATES or {}).get(self.rate_key)


class VisitorRateThrottle(_SettingsRateMixin, AnonRateThrottle):
    """Anonymous visitors, per IP address (DRF's ``NUM_PROXIES`` decides which one)."""

    scope = "voice_widget_anon"
    rate_key = "anon"


class UserSessionRateThrottle(_SettingsRateMixin, UserRateThrottle):
    """Logged-in users, per user; anonymous visitors are left to ``VisitorRateThrottle``."""

    scope = "voice_widget_user"
    rate_key = "user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


def visitor_key(request: Any) -> str:
    """A keyed hash of the visitor's IP address as the throttles see it (DRF's
    ``NUM_PROXIES`` decides which address), so the database never stores the address."""
    ident = BaseThrottle().get_ident(request)
    return salted_hmac("voice_widget.visitor_key", ident, algorithm="sha256").hexdigest()
