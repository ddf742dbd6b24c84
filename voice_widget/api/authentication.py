"""Session authentication for the session endpoint, with CSRF enforced.

The widget posts same-origin with the host site's cookies, so a logged-in visitor's
conversation is tied to their user (and ``login_required`` personas work). DRF's
``SessionAuthentication`` then enforces CSRF, and we keep it that way: a cross-site
form or script must not be able to start a conversation (and spend the site's money)
in a logged-in user's name. The widget sends ``X-CSRFToken`` for them (read from the
``csrftoken`` cookie, or handed over by the page when that cookie is HttpOnly). A
custom authentication that skipped CSRF here would let any site that knows the endpoint
start conversations billed to the host and recorded under a user's account. Anonymous
requests carry no session to ride on, so CSRF does not apply to them (DRF's behaviour);
the origin check and the throttles guard those.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication

from .errors import CsrfFailed


class CsrfCheckedSessionAuthentication(SessionAuthentication):
    """DRF's session authentication; a CSRF failure comes out as ``csrf_failed``."""

    def enforce_csrf(self, request: Any) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise CsrfFailed(
                f"{exc.detail} The widget must send the X-CSRFToken header for logged-in users."
            ) from exc
