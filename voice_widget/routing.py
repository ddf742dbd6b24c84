"""Websocket URLs of the app, for the host's ASGI application (see ``example_site/asgi.py``)::

    URLRouter(voice_widget.routing.websocket_urlpatterns)

behind channels' ``AuthMiddlewareStack`` (the live page needs the session's user).
"""

from __future__ import annotations

import uuid

from django.urls import path

from .consumers import LiveConversationConsumer

#: Where the live page's websocket is served (the admin's page builds its URL from it).
LIVE_SOCKET_PREFIX = "voice-widget/ws/live/"

websocket_urlpatterns = [
    path(
        f"{LIVE_SOCKET_PREFIX}<uuid:conversation_id>/",
        LiveConversationConsumer.as_asgi(),
        name="voice-widget-live",
    ),
]


def live_socket_path(conversation_id: uuid.UUID | str) -> str:
    """The path (from the site's root) of one conversation's live websocket."""
    return f"/{LIVE_SOCKET_PREFIX}{uuid.UUID(str(conversation_id))}/"
