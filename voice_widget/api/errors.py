"""One error shape for the whole widget API: ``{"error": "<code>", "detail": "<message>"}``.

Our views raise the ``ApiError`` subclasses below; DRF's own exceptions (parse errors,
throttling, method not allowed, CSRF) are reshaped by ``exception_handler``, which only
our views use (``get_exception_handler``), so the host project's API keeps its own.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

#: Seconds a visitor is told to wait when the database cannot be reached.
DATABASE_RETRY_AFTER = 10


class ApiError(exceptions.APIException):
    """A refusal with a stable, machine-readable code (``default_code``)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = _("The request cannot be served.")


class InvalidRequest(ApiError):
    default_code = "invalid_request"


class InvalidContext(ApiError):
    default_code = "invalid_context"
    default_detail = _("The page context must be a JSON object.")


class ContextTooDeep(ApiError):
    default_code = "context_too_deep"


class ContextTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "context_too_large"


class RequestTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class InvalidSignedContext(ApiError):
    default_code = "invalid_signed_context"


class SignedContextExpired(ApiError):
    default_code = "signed_context_expired"
    default_detail = _("The page's signed context has expired; reload the page.")


class PersonaNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "persona_not_found"
    default_detail = _("There is no active assistant with this name.")


class EndpointNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = _("There is no such endpoint in the voice widget's API.")


class ConversationNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "conversation_not_found"
    default_detail = _("There is no such conversation.")


class OriginNotAllowed(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "origin_not_allowed"
    default_detail = _("This assistant may not be embedded on this site.")


class LoginRequired(ApiError):
    # Raised as our own 401 rather than DRF's NotAuthenticated, which DRF turns into a
    # 403 whenever the authenticators send no WWW-Authenticate header (session auth).
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "login_required"
    default_detail = _("Please log in to talk to this assistant.")


class CsrfFailed(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "csrf_failed"


class InvalidEndKey(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "invalid_end_key"
    default_detail = _("This end key does not belong to the conversation.")


class ConsentRequired(ApiError):
    default_code = "consent_required"
    default_detail = _(
        "This assistant asks for consent first: accept its notice, then start again "
        "(reload the page if the notice changed)."
    )


class FeedbackDisabled(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "feedback_disabled"
    default_detail = _("This assistant does not ask for feedback.")


class ConversationOver(ApiError):
    """A resume of a conversation that has ended (or failed): a new one must be started."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conversation_ended"
    default_detail = _("This conversation has ended. Start a new one.")


class ResumeWindowPassed(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "resume_window_passed"
    default_detail = _("It is too late to rejoin this conversation. Start a new one.")


class PersonaBusy(ApiError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "persona_busy"
    default_detail = _("This assistant is talking to as many visitors as it may. Try again soon.")

    def __init__(self, wait: int, detail: Any = None) -> None:
        super().__init__(detail)
        self.wait = wait  # DRF's handler turns this into Retry-After


class TooManyUnjoined(ApiError):
    """One visitor already holds ``MAX_UNJOINED_PER_VISITOR`` conversations nobody joined."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_unjoined"
    default_detail = _(
        "You already have conversations with this assistant waiting to be joined. "
        "Use or end one of them, or try again later."
    )

    def __init__(self, wait: int, detail: Any = None) -> None:
        super().__init__(detail)
        self.wait = wait  # DRF's handler turns this into Retry-After


class AgentUnavailable(ApiError):
    """No worker under ``AGENT_NAME`` has sent a heartbeat within ``HEARTBEAT_TIMEOUT``: a
    conversation now would wait for an agent that does not come."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "agent_unavailable"
    default_detail = _("The assistant is not available right now. Please try again later.")

    def __init__(self, agent_name: str, wait: int) -> None:
        super().__init__()
        self.wait = wait  # DRF's handler turns this into Retry-After
        # For the developer's console warning: which agent name no worker serves.
        self.extra = {"agent_name": agent_name}


class BudgetExhausted(ApiError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "budget_exhausted"
    default_detail = _("This assistant has used its daily budget. Try again tomorrow.")

    def __init__(self, detail: Any = None, wait: int | None = None) -> None:
        super().__init__(detail)
        self.wait = wait  # until the site's midnight; DRF's handler sends it as Retry-After


class InvalidSignature(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_signature"
    default_detail = _("The webhook's signature does not verify.")


class LiveKitNotConfigured(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "livekit_not_configured"
    default_detail = _("Voice conversations are not set up on this site yet.")


class DatabaseUnavailable(ApiError):
    """The database cannot be reached (a restart, a failover, too many connections).

    Django opens a new connection on the next request, so this heals by itself."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = _("The site cannot reach its database right now. Try again in a moment.")

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail)
        self.wait = DATABASE_RETRY_AFTER  # DRF's handler turns this into Retry-After


def _first_message(detail: Any, prefix: str = "") -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            label = "" if key == "non_field_errors" else f"{key}: "
            return _first_message(value, prefix + label)
        return prefix
    if isinstance(detail, list):
        return _first_message(detail[0], prefix) if detail else prefix
    return f"{prefix}{detail}"


def error_code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid_request"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's handler (status, Retry-After, rollback), with the body in our shape."""
    if isinstance(exc, OperationalError | InterfaceError):
        # Not a bug but an outage: an answer the widget (maybe on another site) can read.
        logger.error("Database unavailable (%s); answered 503.", type(exc).__name__)
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a bug, left to Django's 500 handling and logging
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    body: dict[str, Any] = {"error": error_code(exc), "detail": _first_message(exc.detail)}
    if isinstance(exc, exceptions.ValidationError):
        body["fields"] = exc.detail
    body.update(getattr(exc, "extra", None) or {})
    response.data = body
    response["Cache-Control"] = "no-store"
    return response
