"""Which web pages may use a persona: one decision, used by CORS and by the views.

A page on this site itself (same scheme, host and port) may always use every persona.
A page on another site may use a persona only if its origin is in the persona's
``allowed_origins`` or in ``VOICE_WIDGET["ALLOWED_ORIGINS"]``. A request without an
``Origin`` header did not come from a browser's cross-site fetch (curl, server-to-server)
and is allowed; the throttles still apply to it.

CORS headers are written by django-cors-headers; ``allow_cors_for_persona_origins`` is
its ``check_request_enabled`` receiver, connected in ``VoiceWidgetConfig.ready()``.
The views refuse a disallowed origin themselves too (403), because CORS only keeps a
browser from *reading* a response, not the server from acting on the request.

The CORS decision reads no database per request: it asks an index of the active personas'
origins (slug → origins), kept per process. Saving or deleting a persona clears it in the
process that saved; other processes reload it when it is ``ORIGIN_INDEX_MAX_AGE`` seconds
old. Under ASGI the index is loaded on a worker thread, and a stale one is refreshed in the
background while the old one still answers, so the event loop waits on the database only
for the first cross-origin request after a start or a save.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from corsheaders.signals import check_request_enabled
from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError, close_old_connections
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from ..conf import vw_settings
from ..models import Persona
from ..validators import canonical_origin

__all__ = [
    "allow_cors_for_persona_origins",
    "canonical_origin",
    "clear_origin_index",
    "origin_allowed_for_persona",
    "request_allowed_for_persona",
]

APP_NAME = "voice_widget"
_CACHE_ATTR = "_voice_widget_cors_allowed"
#: How old (seconds) another process's save may be before this process's CORS answers see it.
ORIGIN_INDEX_MAX_AGE = 30.0
#: One thread loads the index under ASGI, so it holds at most one database connection.
_ORM_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice-widget-cors")


def request_origin(request: HttpRequest) -> str | None:
    """The browser's ``Origin`` header, canonical; None when there is none."""
    origin = request.headers.get("Origin")
    return canonical_origin(origin) if origin else None


def own_origin(request: HttpRequest) -> str | None:
    """This site's origin as the request reached it (None for a host not in ALLOWED_HOSTS)."""
    try:
        return canonical_origin(f"{request.scheme}://{request.get_host()}")
    except DisallowedHost:
        return None


def globally_allowed_origins() -> set[str]:
    return {canonical_origin(origin) for origin in vw_settings.ALLOWED_ORIGINS or ()}


def _origin_allowed(origin: str, persona_origins: frozenset[str] | set[str]) -> bool:
    origin = canonical_origin(origin)
    if origin == "null":  # sandboxed iframes and file:// pages
        return False
    return origin in globally_allowed_origins() or origin in persona_origins


def origin_allowed_for_persona(persona: Persona, origin: str) -> bool:
    """True if pages on ``origin`` (another site) may use ``persona``."""
    return _origin_allowed(origin, set(persona.allowed_origin_list))


def request_allowed_for_persona(request: HttpRequest, persona: Persona) -> bool:
    """The check the views make: no Origin, same origin, or an origin the persona allows."""
    origin = request_origin(request)
    if origin is None or origin == own_origin(request):
        return True
    return origin_allowed_for_persona(persona, origin)


# --- the index of the active personas' origins, for CORS ---------------------------------------


class _OriginIndex:
    """slug → canonical origins of every active persona, loaded at most every few seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_slug: dict[str, frozenset[str]] | None = None
        self._loaded_at = 0.0
        self._refreshing: Future[None] | None = None

    def clear(self) -> None:
        with self._lock:
            self._by_slug = None

    def _load(self) -> None:
        try:
            rows = Persona.objects.active().values_list("slug", "allowed_origins")
            by_slug = {
                slug: frozenset(Persona(allowed_origins=text).allowed_origin_list)
                for slug, text in rows
            }
        finally:
            if threading.current_thread().name.startswith("voice-widget-cors"):
                close_old_connections()  # honours CONN_MAX_AGE, like the end of a request
        with self._lock:
            self._by_slug, self._loaded_at = by_slug, time.monotonic()

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at > ORIGIN_INDEX_MAX_AGE

    def by_slug(self) -> dict[str, frozenset[str]]:
        current = self._by_slug
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # WSGI, or a sync middleware chain: load in place
            if current is None or self._stale():
                self._load()
            return self._by_slug or {}
        # On the event loop, where the ORM may not run: a worker thread loads the index.
        if current is None:
            _ORM_EXECUTOR.submit(self._load).result()
            return self._by_slug or {}
        if self._stale() and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = _ORM_EXECUTOR.submit(self._load)  # the old index answers now
        return current


_index = _OriginIndex()


@receiver(post_save, sender=Persona, dispatch_uid="voice_widget.cors_index_save")
@receiver(post_delete, sender=Persona, dispatch_uid="voice_widget.cors_index_delete")
def clear_origin_index(**kwargs: Any) -> None:
    """Forget the origins index (a persona changed); the next CORS answer reloads it."""
    _index.clear()


def _cors_allowed(request: HttpRequest) -> bool:
    origin = request_origin(request)
    if origin is None or origin == own_origin(request):
        return False  # nothing to share across origins
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    if APP_NAME not in match.app_names:
        return False
    name = match.url_name
    if name == "persona":
        persona_origins = _index.by_slug().get(match.kwargs.get("slug"))
        return persona_origins is not None and _origin_allowed(origin, persona_origins)
    if name in ("sessions", "session-end", "session-status", "health", "schema"):
        # A preflight carries no body, so it cannot name the persona; the end and status
        # URLs name a conversation, which only the database knows. Answer for any persona
        # this origin may use: each view then checks the persona it acts for (403).
        if _origin_allowed(origin, set()):
            return True
        return any(_origin_allowed(origin, origins) for origins in _index.by_slug().values())
    return False  # the LiveKit webhook is server-to-server


@receiver(check_request_enabled, dispatch_uid="voice_widget.cors")
def allow_cors_for_persona_origins(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    """django-cors-headers' ``check_request_enabled``: share our API with allowed origins."""
    cached = getattr(request, _CACHE_ATTR, None)
    if cached is None:
        try:
            cached = _cors_allowed(request)
        except (OperationalError, InterfaceError):
            # The database is down, so the persona's origins are unknown. Share the answer
            # anyway: it is the view's 503 (which the widget must be able to read), or a
            # preflight; the views check the origin themselves before doing anything.
            cached = True
        setattr(request, _CACHE_ATTR, cached)
    return cached
