"""The OpenAPI 3 document of the widget API only (drf-spectacular).

The generator walks the project's full URLconf, so paths carry the prefix the host
mounted us under, and keeps only our views, so the host's own API is never described here.
Nothing here depends on the host's ``REST_FRAMEWORK`` (its ``DEFAULT_SCHEMA_CLASS`` in
particular): every view of ours names drf-spectacular's ``AutoSchema`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular import utils as spectacular_utils
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer

from .errors import exception_handler

API_MODULE = "voice_widget.api."


def extend_schema(**kwargs: Any) -> Callable[[Any], Any]:
    """drf-spectacular's ``extend_schema`` for a view method, built on its own ``AutoSchema``.

    The original builds on ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` as it stands when the
    module is imported; a host that never set it to drf-spectacular's would get DRF's
    ``AutoSchema`` there, and a 500 from the schema endpoint.
    """
    decorate = spectacular_utils.extend_schema(**kwargs)

    def decorator(method: Any) -> Any:
        # extend_schema takes a schema the function already names as its base class.
        method.schema = AutoSchema
        try:
            return decorate(method)
        finally:
            del method.schema

    return decorator


class CsrfCheckedSessionScheme(SessionScheme):
    """Our session authentication is DRF's, described the same way (a session cookie)."""

    target_class = "voice_widget.api.authentication.CsrfCheckedSessionAuthentication"


def only_widget_endpoints(endpoints: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """drf-spectacular preprocessing hook: keep our views, drop the host's."""
    return [
        endpoint
        for endpoint in endpoints
        if getattr(endpoint[3], "cls", None) is not None
        and endpoint[3].cls.__module__.startswith(API_MODULE)
    ]


class SchemaView(SpectacularAPIView):
    serve_public = True
    renderer_classes = [JSONRenderer]
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    schema = AutoSchema()
    custom_settings = {
        "TITLE": "django-voice-widget API",
        "DESCRIPTION": "Token and dispatch API of the voice widget.",
        "VERSION": "1",
        # The supported way to choose endpoints; the host's own hooks don't apply here.
        "PREPROCESSING_HOOKS": [f"{__name__}.only_widget_endpoints"],
    }

    def get_exception_handler(self) -> Any:
        return exception_handler

    # SpectacularAPIView.get was annotated when drf-spectacular was imported, on whatever
    # DEFAULT_SCHEMA_CLASS the host had then; this one is annotated on ours.
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)
