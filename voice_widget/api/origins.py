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
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from corsheaders.signals import check_request_enabled
from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError, close_old_connections
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from ..conf import vw_settings
from ..models import Conversation, Persona

APP_NAME = "voice_widget"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CACHE_ATTR = "_voice_widget_cors_allowed"
#: Threads for the CORS lookup under ASGI; few, so they keep few database connections.
_ORM_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="voice-widget-cors")


def canonical_origin(value: str) -> str:
    """``scheme://host[:port]`` lower-cased, without a default port or trailing slash."""
    value = (value or "").strip().rstrip("/").lower()
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return value
    if not parts.scheme or not parts.hostname:
        return value
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


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


def origin_allowed_for_persona(persona: Persona, origin: str) -> bool:
    """True if pages on ``origin`` (another site) may use ``persona``."""
    origin = canonical_origin(origin)
    if origin == "null":  # sandboxed iframes and file:// pages
        return False
    if origin in globally_allowed_origins():
        return True
    return origin in {canonical_origin(item) for item in persona.allowed_origin_list}


def request_allowed_for_persona(request: HttpRequest, persona: Persona) -> bool:
    """The check the views make: no Origin, same origin, or an origin the persona allows."""
    origin = request_origin(request)
    if origin is None or origin == own_origin(request):
        return True
    return origin_allowed_for_persona(persona, origin)


def _origin_allowed_for_any_persona(origin: str) -> bool:
    if canonical_origin(origin) in globally_allowed_origins():
        return True
    # Narrow in the database, then decide with the same function the views use.
    host = urlsplit(origin).hostname or origin
    candidates = Persona.objects.active().filter(allowed_origins__icontains=host)
    return any(origin_allowed_for_persona(persona, origin) for persona in candidates)


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
        persona = Persona.objects.active().filter(slug=match.kwargs.get("slug")).first()
        return persona is not None and origin_allowed_for_persona(persona, origin)
    if name in ("session-end", "session-status"):
        conversation = (
            Conversation.objects.select_related("persona")
            .filter(pk=match.kwargs.get("conversation_id"))
            .first()
        )
        return conversation is not None and origin_allowed_for_persona(conversation.persona, origin)
    if name in ("sessions", "health", "schema"):
        # A preflight carries no body, so it cannot name the persona: answer for any
        # persona this origin may use; the view then checks the persona it asks for.
        return _origin_allowed_for_any_persona(origin)
    return False  # the LiveKit webhook is server-to-server


def _cors_allowed_in_thread(request: HttpRequest) -> bool:
    try:
        return _cors_allowed(request)
    finally:
        close_old_connections()  # honours CONN_MAX_AGE, like the end of a request


def _decide(request: HttpRequest) -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _cors_allowed(request)  # WSGI, or a sync middleware chain: a plain call
    # Under ASGI, CorsMiddleware runs on the event loop, where the ORM may not run.
    # A signal receiver cannot await, so the lookup (one indexed query, only for
    # cross-origin requests to our API) runs on a worker thread while the loop waits.
    return _ORM_EXECUTOR.submit(_cors_allowed_in_thread, request).result()


@receiver(check_request_enabled, dispatch_uid="voice_widget.cors")
def allow_cors_for_persona_origins(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    """django-cors-headers' ``check_request_enabled``: share our API with allowed origins."""
    cached = getattr(request, _CACHE_ATTR, None)
    if cached is None:
        try:
            cached = _decide(request)
        except (OperationalError, InterfaceError):
            # The database is down, so the persona's origins are unknown. Share the answer
            # anyway: it is the view's 503 (which the widget must be able to read), or a
            # preflight; the views check the origin themselves before doing anything.
            cached = True
        setattr(request, _CACHE_ATTR, cached)
    return cached
