"""Editors' tries from the persona's admin page ("Try it here").

The admin page renders the widget with a session endpoint that carries a signed proof
(``?trial=…``): which persona it is for and which staff user the page was drawn for. The
session view marks a conversation as an editor's test only when that proof verifies, the
request's own session is that same user, and the user is still staff, so a browser alone
cannot mark its conversations as tests (and so hide them from the statistics). Only
active personas can be tried: the worker serves no other.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.core import signing

#: Versioned like the signed context's salt; a proof from another purpose never verifies.
SALT = "voice_widget.admin_trial.v1"
#: How long an admin page's proof stays valid (seconds): a working day of trying.
MAX_AGE = 60 * 60 * 12
QUERY_PARAMETER = "trial"


def sign_trial(*, persona: str, user_id: Any) -> str:
    """The proof an admin page gives its widget, for ``persona`` and the staff user."""
    return signing.dumps({"persona": persona, "user": str(user_id)}, salt=SALT)


def trial_endpoint(sessions_url: str, *, persona: str, user_id: Any) -> str:
    """The session endpoint with the proof in its query string (the widget keeps it)."""
    proof = sign_trial(persona=persona, user_id=user_id)
    return f"{sessions_url}?{urlencode({QUERY_PARAMETER: proof})}"


def is_verified_trial(token: str, *, persona: str, user: Any) -> bool:
    """True when ``token`` was signed for ``persona`` and for ``user``, and ``user`` is an
    active staff member now (a proof outlives neither a demotion nor a log-out)."""
    if not token or user is None or not user.is_authenticated:
        return False
    if not (user.is_active and user.is_staff):
        return False
    try:
        payload = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return False
    return (
        isinstance(payload, dict)
        and payload.get("persona") == persona
        and payload.get("user") == str(user.pk)
    )
