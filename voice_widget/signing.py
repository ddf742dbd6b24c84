"""Signed page context: facts the server-side template tag vouches for.

The template tag signs a dict of facts (e.g. the logged-in user's first name or
the product on the page) into an opaque string the widget sends back with its
token request; the API verifies it and stores it apart from the browser's own,
unverified ``context``.

The facts are bound to the persona whose page they were signed for and, when the
page was rendered for a logged-in user, to that user: a string copied from Paula's
page, or from another user's page, vouches for nothing in Ben's or in one's own.
"""

from __future__ import annotations

from typing import Any

from django.core import signing

from .conf import vw_settings

#: Versioned: strings signed before facts were bound to a persona are no longer accepted.
SALT = "voice_widget.signed_context.v2"


class SignedContextMismatch(signing.BadSignature):
    """A genuine signed context, but for another persona or another user."""


def _user_key(user_id: Any) -> str | None:
    return None if user_id is None else str(user_id)


def sign_context(facts: dict[str, Any], *, persona: str, user_id: Any = None) -> str:
    """Sign (and compress) ``facts`` for ``persona``'s page, and for the logged-in user
    ``user_id`` if there is one; the result is safe to put in an HTML attribute."""
    if not isinstance(facts, dict):
        raise TypeError("Signed context must be a dict of JSON-serialisable facts.")
    payload = {"facts": facts, "persona": persona, "user": _user_key(user_id)}
    return signing.dumps(payload, salt=SALT, compress=True)


def unsign_context(
    token: str, *, persona: str, user_id: Any = None, max_age: int | None = None
) -> dict[str, Any]:
    """The facts in ``token`` if it was signed for ``persona`` and for the user ``user_id``
    (None: an anonymous visitor). Raises ``signing.BadSignature``, ``SignatureExpired`` or
    ``SignedContextMismatch``."""
    payload = signing.loads(
        token,
        salt=SALT,
        max_age=vw_settings.SIGNED_CONTEXT_MAX_AGE if max_age is None else max_age,
    )
    if not isinstance(payload, dict) or not isinstance(payload.get("facts"), dict):
        raise signing.BadSignature("Signed context is not an object.")
    if payload.get("persona") != persona:
        raise SignedContextMismatch("The signed context was signed for another assistant's page.")
    bound_user = payload.get("user")
    if bound_user is not None and bound_user != _user_key(user_id):
        raise SignedContextMismatch("The signed context was signed for another user's page.")
    return payload["facts"]
