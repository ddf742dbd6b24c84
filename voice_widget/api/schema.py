"""The OpenAPI 3 document of the widget API only (drf-spectacular).

The generator walks the project's full URLconf, so paths carry the prefix the host
mounted us under, and keeps only our views, so the host's own API is never described here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer

from .errors import exception_handler

API_MODULE = "voice_widget.api."


class CsrfCheckedSessionScheme(SessionScheme):
    """Our session authentication is DRF's, described the same way (a session cookie)."""

    target_class = "voice_widget.api.authentication.CsrfCheckedSessionAuthentication"


class VoiceWidgetSchemaGenerator(SchemaGenerator):
    def _initialise_endpoints(self) -> None:
        super()._initialise_endpoints()
        self.endpoints = [
            endpoint
            for endpoint in self.endpoints
            if getattr(endpoint[3], "cls", None) is not None
            and endpoint[3].cls.__module__.startswith(API_MODULE)
        ]


class SchemaView(SpectacularAPIView):
    generator_class = VoiceWidgetSchemaGenerator
    serve_public = True
    renderer_classes = [JSONRenderer]
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    custom_settings = {
        "TITLE": "django-voice-widget API",
        "DESCRIPTION": "Token and dispatch API of the voice widget.",
        "VERSION": "1",
    }

    def get_exception_handler(self) -> Any:
        return exception_handler
