"""Throttles for the session endpoint, with rates from ``VOICE_WIDGET["THROTTLE_RATES"]``.

Rates are read when a throttle is instantiated, i.e. on every request, so a settings
change (or ``override_settings`` in a test) applies at once. The cache scopes are our
own, so the host project's DRF throttles and ours never share a counter.

DRF's ``SimpleRateThrottle`` reads a list of timestamps from the cache and writes it back:
simultaneous requests all read the same list, and under a burst nearly all of them pass
(44 of 50 against a limit of 10, measured with Redis). These count with the cache's atomic
``add`` and ``incr`` instead: a fixed window opened by the first request (whose ``add``
creates the counter at 1), which every later request increments, so exactly ``limit``
requests of a burst pass. That needs a cache whose increment is atomic and which every
process shares (Redis, Memcached); the ``voice_widget.W002`` deployment check warns about
any other.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.utils.crypto import salted_hmac
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, UserRateThrottle

from ..conf import vw_settings


class _AtomicWindowThrottle:
    """A fixed window per visitor, counted with ``cache.add`` + ``cache.incr``.

    The window opens with the visitor's first request and lasts the rate's period (the
    counter's expiry is set once, when it is created; increments keep it). A second key
    remembers when the window opened, only to say ``Retry-After``.
    """

    #: Key in ``THROTTLE_RATES``; ``None`` there switches the throttle off.
    rate_key = ""

    # Set by DRF's SimpleRateThrottle machinery (the concrete classes below inherit it).
    cache: Any
    duration: int
    num_requests: int
    rate: str | None
    timer: Any

    def get_rate(self) -> str | None:
        return (vw_settings.THROTTLE_RATES or {}).get(self.rate_key)

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return True
        self.now = self.timer()
        self.key = key
        count = self._increment(f"{key}:count")
        if count is None:
            return True  # a cache that keeps nothing (DummyCache) cannot throttle
        return count <= self.num_requests

    def _increment(self, key: str) -> int | None:
        if isinstance(self.cache, DummyCache):
            return None  # its add() says yes and keeps nothing
        for _ in range(2):
            if self.cache.add(key, 1, self.duration):
                count = 1  # opened the window (with its end): one operation for a new visitor
            else:
                try:
                    count = self.cache.incr(key)
                except ValueError:
                    continue  # the window closed between add and incr: open the next one
                if count == 1:
                    # Redis's INCR recreates, without an expiry, a key that expired just
                    # after add found it: that counter would never reset.
                    self.cache.touch(key, self.duration)
            if count == 1:
                # Whoever opens the window notes when, for Retry-After.
                self.cache.set(f"{self.key}:opened", self.now, self.duration)
            return count
        return None

    def wait(self) -> float | None:
        opened = self.cache.get(f"{self.key}:opened")
        if opened is None:
            return float(self.duration)
        return max(1.0, opened + self.duration - self.now)


class VisitorRateThrottle(_AtomicWindowThrottle, AnonRateThrottle):
    """Anonymous visitors, per IP address (DRF's ``NUM_PROXIES`` decides which one)."""

    scope = "voice_widget_anon"
    rate_key = "anon"


class UserSessionRateThrottle(_AtomicWindowThrottle, UserRateThrottle):
    """Logged-in users, per user; anonymous visitors are left to ``VisitorRateThrottle``."""

    scope = "voice_widget_user"
    rate_key = "user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


def throttle_cache_problem() -> str | None:
    """Why the throttles' cache (Django's default cache, as for DRF's throttles) cannot count
    for several processes, or None."""
    cache = caches[DEFAULT_CACHE_ALIAS]
    name = type(cache).__name__
    if isinstance(cache, DummyCache):
        return f"is {name}, which keeps nothing: the session endpoint is not throttled at all"
    if isinstance(cache, LocMemCache):
        return (
            f"is {name}, kept in each process: with several processes each counts "
            "alone, so a visitor gets the rate once per process"
        )
    if isinstance(cache, DatabaseCache | FileBasedCache):
        return (
            f"is {name}, whose increments are not atomic: simultaneous requests can all "
            "pass the limit"
        )
    return None


def visitor_key(request: Any) -> str:
    """A keyed hash of the visitor's IP address as the throttles see it (DRF's
    ``NUM_PROXIES`` decides which address), so the database never stores the address."""
    ident = BaseThrottle().get_ident(request)
    return salted_hmac("voice_widget.visitor_key", ident, algorithm="sha256").hexdigest()
