"""Signed page context: facts the server-side template tag vouches for.

The template tag signs a dict of facts (e.g. the logged-in user's first name or
the product on the page) into an opaque string the widget sends back with its
token request; the API verifies it and stores it apart from the browser's own,
unverified ``context``.
"""

from __future__ import annotations

from typing import Any

from django.core import signing

from .conf import vw_settings

SALT = "voice_widget.signed_context"


def sign_context(facts: dict[str, Any]) -> str:
    """Sign (and compress) ``facts``; the result is safe to put in an HTML attribute."""
    if not isinstance(facts, dict):
        raise TypeError("Signed context must be a dict of JSON-serialisable facts.")
    return signing.dumps(facts, salt=SALT, compress=True)


def unsign_context(token: str, max_age: int | None = None) -> dict[str, Any]:
    """The facts in ``token``; raises ``signing.BadSignature`` (or ``SignatureExpired``)."""
    value = signing.loads(
        token,
        salt=SALT,
        max_age=vw_settings.SIGNED_CONTEXT_MAX_AGE if max_age is None else max_age,
    )
    if not isinstance(value, dict):
        raise signing.BadSignature("Signed context is not an object.")
    return value
