"""The widget API. The session endpoint is the only door between an anonymous browser and
paid AI services, so it refuses early, writes nothing for a refused request, and hands
out a token that can do exactly one thing: join this conversation's room.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import lru_cache
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpResponsePermanentRedirect
from django.urls import Resolver404, get_script_prefix, get_urlconf, resolve, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from google.protobuf.json_format import ParseError as ProtobufParseError
from livekit.api import TokenVerifier, WebhookReceiver
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..budget import daily_budget_refusal
from ..conf import vw_settings
from ..lifecycle import (
    end_conversation,
    join_window,
    mark_visitor_joined,
    mark_visitor_left,
    mark_visitor_returned,
    resume_window,
)
from ..models import OPEN_STATUSES, Conversation, EndReason, Persona, TurnRole, WorkerHeartbeat
from ..rooms import agent_in_room, delete_room_in_background, dispatch_agent
from ..signing import SignedContextMismatch, unsign_context
from ..tokens import (
    dev_secret_warning_silenced,
    mint_participant_token,
    new_identity,
    new_room_name,
)
from ..trials import QUERY_PARAMETER as TRIAL_PARAMETER
from ..trials import is_verified_trial
from . import errors
from .authentication import CsrfCheckedSessionAuthentication
from .errors import exception_handler
from .origins import request_allowed_for_persona
from .parsers import (
    BoundedFormParser,
    BoundedJSONParser,
    BoundedMultiPartParser,
    PlainTextJSONParser,
    refuse_declared_oversized_body,
)
from .schema import extend_schema
from .serializers import (
    ErrorSerializer,
    FeedbackRequestSerializer,
    FeedbackResponseSerializer,
    HealthSerializer,
    PublicPersonaSerializer,
    SessionEndRequestSerializer,
    SessionEndResponseSerializer,
    SessionRequestSerializer,
    SessionResponseSerializer,
    SessionResumeResponseSerializer,
    SessionStatusRequestSerializer,
    WebhookResponseSerializer,
    accepted_consent,
    check_page_context,
    is_storable_text,
    widget_failure_detail,
)
from .session_reads import (
    could_exceed_unjoined,
    persona_snapshot,
    session_persona,
    worker_alive,
)
from .throttling import UserSessionRateThrottle, VisitorRateThrottle, visitor_key

logger = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
VISITOR_DISPLAY_NAME = "Visitor"
#: Seconds a visitor is told to wait when the persona is at its concurrency limit.
BUSY_RETRY_AFTER = 30


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


def hash_end_key(end_key: str) -> str:
    """SHA-256 hex of an end key; only the hash is stored."""
    return hashlib.sha256(end_key.encode()).hexdigest()


#: The conversation's endpoints in the session answer: key → URL name.
CONVERSATION_URL_NAMES = {
    "end_url": "voice_widget:session-end",
    "status_url": "voice_widget:session-status",
    "feedback_url": "voice_widget:session-feedback",
    "resume_url": "voice_widget:session-resume",
}
#: Reversed in place of a conversation's id, then replaced by it.
_ID_PLACEHOLDER = uuid.UUID(int=0)


def conversation_urls(conversation_id: uuid.UUID) -> dict[str, str]:
    """The paths of a conversation's endpoints, as ``reverse()`` gives them.

    Reversed once per urlconf and script prefix (``_conversation_url_parts``), then only the
    id is put in: four ``reverse()`` calls were a tenth of the session view's time.
    """
    parts = _conversation_url_parts(get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    id_text = str(conversation_id)
    return {key: id_text.join(pieces) for key, pieces in parts}


@lru_cache(maxsize=16)
def _conversation_url_parts(
    urlconf: str | ModuleType, script_prefix: str
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    # ``reverse()`` itself reads the urlconf and script prefix this cache is keyed by.
    return tuple(
        (
            key,
            tuple(
                reverse(name, kwargs={"conversation_id": _ID_PLACEHOLDER}).split(
                    str(_ID_PLACEHOLDER)
                )
            ),
        )
        for key, name in CONVERSATION_URL_NAMES.items()
    )


@receiver(setting_changed)
def _urls_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":  # the same name may now hold other patterns (tests)
        _conversation_url_parts.cache_clear()


class VoiceWidgetAPIView(APIView):
    """Every policy spelled out, so the host project's REST_FRAMEWORK defaults (say,
    ``IsAuthenticated`` or token auth for its own API) never change the widget's API."""

    renderer_classes = [JSONRenderer]
    parser_classes = [BoundedJSONParser]
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    versioning_class = None
    schema = AutoSchema()

    def get_exception_handler(self) -> Any:
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication, throttles or parsing read anything: a visitor's request
        # is a few kilobytes, so a body declared larger is refused unread.
        refuse_declared_oversized_body(request._request)
        super().initial(request, *args, **kwargs)


class SessionCreateView(VoiceWidgetAPIView):
    """Start a conversation: a Conversation row and a token that dispatches our agent."""

    authentication_classes = [CsrfCheckedSessionAuthentication]
    throttle_classes = [VisitorRateThrottle, UserSessionRateThrottle]

    @extend_schema(
        operation_id="create_session",
        request=SessionRequestSerializer,
        responses={
            201: SessionResponseSerializer,
            **_errors(400, 401, 403, 404, 413, 415, 429, 503),
        },
    )
    def post(self, request: Request) -> Response:
        if not vw_settings.livekit_configured:
            raise errors.LiveKitNotConfigured()
        serializer = SessionRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        user = request.user if request.user and request.user.is_authenticated else None
        # An editor's try from the persona's admin page (verified, never the browser's word).
        is_test = is_verified_trial(
            request.query_params.get(TRIAL_PARAMETER, ""), persona=data["persona"], user=user
        )
        try:
            persona = session_persona(data["persona"])
        except Persona.DoesNotExist as exc:
            raise errors.PersonaNotFound() from exc
        if not request_allowed_for_persona(request, persona):
            raise errors.OriginNotAllowed()
        if persona.login_required and user is None:
            raise errors.LoginRequired()
        signed_context = self._verified_signed_context(
            data.get("signed_context") or "", persona=persona, user=user
        )
        page_context = check_page_context(data.get("context"))
        consent = accepted_consent(persona, data.get("consent"))
        if refusal := daily_budget_refusal(persona):
            raise errors.BudgetExhausted(refusal.detail, wait=refusal.retry_after)

        self._check_agent_available()

        end_key = secrets.token_urlsafe(32)
        key = visitor_key(request)
        with self._place_taken(persona, user=user, visitor_key=key):
            snapshot = persona_snapshot(persona)
            conversation = Conversation.objects.create(
                persona=persona,
                persona_snapshot=snapshot.data,
                # The version the snapshot was taken from.
                persona_version_id=snapshot.version_id,
                is_test=is_test,
                room_name=new_room_name(),
                identity=new_identity(user),
                user=user,
                page_url=data.get("page_url") or "",
                page_context=page_context,
                signed_context=signed_context,
                end_key_hash=hash_end_key(end_key),
                **consent,
                visitor_key=key,
            )
        token = mint_participant_token(
            room_name=conversation.room_name,
            identity=conversation.identity,
            conversation_id=conversation.pk,
            # The token goes to LiveKit (possibly LiveKit Cloud): no names of users in it.
            # The worker finds the user, if any, through the conversation.
            display_name=VISITOR_DISPLAY_NAME,
            clicked=data["clicked"],
        )
        logger.info("conversation %s created (persona %s)", conversation.pk, persona.slug)
        body = {
            "conversation": str(conversation.pk),
            "server_url": vw_settings.LIVEKIT_URL,
            "participant_token": token.jwt,
            "room_name": conversation.room_name,
            "identity": conversation.identity,
            "expires_at": token.expires_at.isoformat().replace("+00:00", "Z"),
            **conversation_urls(conversation.pk),
            "resume_window": vw_settings.RESUME_WINDOW,
            "end_key": end_key,
        }
        return Response(body, status=status.HTTP_201_CREATED, headers=NO_STORE)

    @staticmethod
    def _verified_signed_context(token: str, *, persona: Persona, user: Any) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return unsign_context(
                token, persona=persona.slug, user_id=user.pk if user is not None else None
            )
        except signing.SignatureExpired as exc:
            raise errors.SignedContextExpired() from exc
        except SignedContextMismatch as exc:
            raise errors.InvalidSignedContext(f"{exc} Reload the page.") from exc
        except signing.BadSignature as exc:
            raise errors.InvalidSignedContext(
                "The signed context was not signed by this site, or was changed."
            ) from exc

    @staticmethod
    def _check_agent_available() -> None:
        """503 when no worker serves ``AGENT_NAME`` (no heartbeat within ``HEARTBEAT_TIMEOUT``):
        the visitor learns it from this one request, and nobody (a script either) opens a
        conversation that no agent would join."""
        agent_name = vw_settings.AGENT_NAME
        within = timedelta(seconds=vw_settings.HEARTBEAT_TIMEOUT)
        if not worker_alive(agent_name, within=within):
            logger.warning("session refused: no worker alive for agent %r", agent_name)
            raise errors.AgentUnavailable(agent_name, wait=vw_settings.HEARTBEAT_INTERVAL)

    @classmethod
    @contextmanager
    def _place_taken(cls, persona: Persona, *, user: Any, visitor_key: str) -> Iterator[None]:
        """Around the INSERT: the place checks and their transaction, only when a limit
        could refuse this request (a single INSERT needs no transaction of its own)."""
        per_visitor = vw_settings.MAX_UNJOINED_PER_VISITOR
        if per_visitor is not None and not could_exceed_unjoined(
            persona, user=user, visitor_key=visitor_key, window=join_window(), limit=per_visitor
        ):
            per_visitor = None
        if per_visitor is None and persona.max_concurrent_conversations is None:
            yield
            return
        with transaction.atomic():
            cls._check_places(persona, user=user, visitor_key=visitor_key, per_visitor=per_visitor)
            yield

    @staticmethod
    def _check_places(
        persona: Persona, *, user: Any, visitor_key: str, per_visitor: int | None
    ) -> None:
        """429 when this visitor already holds ``MAX_UNJOINED_PER_VISITOR`` conversations of
        the persona that nobody joined, or when the persona has its maximum of open ones.

        Runs inside the creating transaction with the persona row locked (on databases
        that lock rows), so simultaneous requests cannot both take the last place.
        A conversation nobody joined holds a place only while its token could still be
        used; one nobody closed (a crashed worker, a lost webhook) stops counting once it
        is older than any real one can be: the token's lifetime plus the persona's preview
        and conversation limits.
        """
        limit = persona.max_concurrent_conversations
        if limit is None and per_visitor is None:
            return
        list(Persona.objects.select_for_update().filter(pk=persona.pk).order_by().values_list("pk"))
        now = timezone.now()
        window = join_window()
        if per_visitor is not None:
            mine = Conversation.objects.unjoined().filter(
                persona=persona, created_at__gte=now - window
            )
            if user is not None:
                mine = mine.filter(user=user)
            else:
                mine = mine.filter(user__isnull=True, visitor_key=visitor_key)
            waiting = list(
                mine.order_by("created_at").values_list("created_at", flat=True)[:per_visitor]
            )
            if len(waiting) >= per_visitor:
                wait = max(1, math.ceil((waiting[0] + window - now).total_seconds()))
                raise errors.TooManyUnjoined(
                    wait=wait,
                    detail=(
                        f"You already have {len(waiting)} conversations with this assistant "
                        "that were never joined. Use or end one of them, or try again in "
                        f"{wait} seconds."
                    ),
                )
        if limit is None:
            return
        oldest_possible = now - timedelta(
            seconds=vw_settings.TOKEN_TTL
            + persona.preview_idle_seconds
            + persona.max_duration_seconds
        )
        held = (
            Conversation.objects.holding_places(
                joined_since=oldest_possible, unjoined_since=now - window
            )
            .filter(persona=persona)
            .count()
        )
        if held >= limit:
            raise errors.PersonaBusy(wait=BUSY_RETRY_AFTER)


class EndKeyView(VoiceWidgetAPIView):
    """Base of the views a visitor's browser reaches with the conversation's end key.

    The end key returned at creation is the only credential: no session, hence no CSRF
    (a beacon cannot send a CSRF header), and no origin check (a beacon from an embedding
    site is a no-preflight ``text/plain`` POST; holding the key is what counts).
    """

    parser_classes = [
        BoundedJSONParser,
        PlainTextJSONParser,
        BoundedFormParser,
        BoundedMultiPartParser,  # FormData beacons, within the body bound and DATA_UPLOAD_*
    ]
    request_serializer_class: type = SessionStatusRequestSerializer

    def validated(self, request: Request) -> dict[str, Any]:
        payload = request.data
        if not hasattr(payload, "get"):
            raise errors.InvalidRequest("Send a JSON object with the end key.")
        fields = self.request_serializer_class().fields
        serializer = self.request_serializer_class(
            data={name: payload.get(name) for name in fields if payload.get(name) is not None}
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @staticmethod
    def conversation_for_key(conversation_id: Any, end_key: str) -> Conversation:
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is None:
            raise errors.ConversationNotFound()
        if not conversation.end_key_hash or not hmac.compare_digest(
            hash_end_key(end_key), conversation.end_key_hash
        ):
            raise errors.InvalidEndKey()
        return conversation

    @staticmethod
    def state(conversation: Conversation) -> Response:
        body = {
            "conversation": str(conversation.pk),
            "status": conversation.status,
            "end_reason": conversation.end_reason,
        }
        return Response(body, headers=NO_STORE)


_END_KEY_REQUEST_TYPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
)


class SessionEndView(EndKeyView):
    """End a conversation from the browser, e.g. with ``navigator.sendBeacon`` on unload.

    An ending already on record (the worker's ``max_duration``, say) is kept: the answer
    carries the reason on record, which the widget then shows.
    """

    request_serializer_class = SessionEndRequestSerializer

    @extend_schema(
        operation_id="end_session",
        request={kind: SessionEndRequestSerializer for kind in _END_KEY_REQUEST_TYPES},
        responses={200: SessionEndResponseSerializer, **_errors(400, 403, 404, 413, 415)},
    )
    def post(self, request: Request, conversation_id: Any) -> Response:
        data = self.validated(request)
        conversation = self.conversation_for_key(conversation_id, data["end_key"])
        reason = data["reason"]
        # A failure the widget reports is recorded as such, with what happened.
        failed = reason == EndReason.ERROR
        detail = widget_failure_detail(data["detail"]) if failed else ""
        if end_conversation(conversation.pk, reason, detail=detail, failed=failed):
            # Only the call that ended it deletes the room, so repeated beacons cost nothing;
            # after the answer, in a thread of its own, so a stalled LiveKit holds nothing.
            delete_room_in_background(conversation.room_name)
        conversation.refresh_from_db(fields=["status", "end_reason"])
        return self.state(conversation)


class SessionStatusView(EndKeyView):
    """Where a conversation stands (``created``, ``ready``, ``active``, ``ended``, ``failed``)
    and why it ended: how the widget learns, while it waits for the agent, that the agent
    could not join."""

    @extend_schema(
        operation_id="session_status",
        request={kind: SessionStatusRequestSerializer for kind in _END_KEY_REQUEST_TYPES},
        responses={200: SessionEndResponseSerializer, **_errors(400, 403, 404, 413, 415)},
    )
    def post(self, request: Request, conversation_id: Any) -> Response:
        data = self.validated(request)
        return self.state(self.conversation_for_key(conversation_id, data["end_key"]))


class SessionFeedbackView(EndKeyView):
    """The visitor's rating of a conversation (thumbs up or down, an optional comment),
    when the persona asks for feedback. A second rating replaces the first: the visitor
    changed their mind."""

    request_serializer_class = FeedbackRequestSerializer

    @extend_schema(
        operation_id="session_feedback",
        request={kind: FeedbackRequestSerializer for kind in _END_KEY_REQUEST_TYPES},
        responses={200: FeedbackResponseSerializer, **_errors(400, 403, 404, 413, 415)},
    )
    def post(self, request: Request, conversation_id: Any) -> Response:
        data = self.validated(request)
        conversation = self.conversation_for_key(conversation_id, data["end_key"])
        # The setting the conversation ran with; older snapshots fall back to the persona.
        enabled = conversation.persona_snapshot.get("feedback_enabled")
        if enabled is None:
            enabled = conversation.persona.feedback_enabled
        if not enabled:
            raise errors.FeedbackDisabled()
        comment = (data.get("comment") or "").strip()
        Conversation.objects.filter(pk=conversation.pk).update(
            feedback_rating=data["rating"], feedback_comment=comment, feedback_at=timezone.now()
        )
        logger.info("conversation %s: feedback %s", conversation.pk, data["rating"])
        body = {"conversation": str(conversation.pk), "rating": data["rating"], "comment": comment}
        return Response(body, headers=NO_STORE)


class SessionResumeView(EndKeyView):
    """Rejoin an open conversation after a reload or a move to another page of the site.

    The end key (kept by the widget in the tab's sessionStorage) is the credential. The
    answer is a fresh token for the same room and identity, without any agent dispatch
    (LiveKit ignores a token's dispatch for a room that exists), the transcript so far, and
    whether the agent is there; an agent that left an open conversation is sent back with
    AgentDispatchService.
    """

    @extend_schema(
        operation_id="resume_session",
        request={kind: SessionStatusRequestSerializer for kind in _END_KEY_REQUEST_TYPES},
        responses={
            200: SessionResumeResponseSerializer,
            **_errors(400, 403, 404, 409, 413, 415, 503),
        },
    )
    def post(self, request: Request, conversation_id: Any) -> Response:
        if not vw_settings.livekit_configured:
            raise errors.LiveKitNotConfigured()
        data = self.validated(request)
        conversation = self.conversation_for_key(conversation_id, data["end_key"])
        if conversation.status not in OPEN_STATUSES:
            raise errors.ConversationOver()
        window = resume_window()
        if not window:
            raise errors.ResumeWindowPassed("This site does not let conversations resume.")
        left = conversation.visitor_left_at
        if left is not None and timezone.now() - left > window:
            raise errors.ResumeWindowPassed()

        agent = self._agent(conversation)
        token = mint_participant_token(
            room_name=conversation.room_name,
            identity=conversation.identity,
            conversation_id=conversation.pk,
            display_name=VISITOR_DISPLAY_NAME,
            dispatch=False,
        )
        transcript = [
            {"role": role, "text": text}
            for role, text in conversation.turns.filter(
                role__in=[TurnRole.USER, TurnRole.AGENT]
            ).values_list("role", "text")
        ]
        logger.info("conversation %s resumed (agent %s)", conversation.pk, agent)
        body = {
            "conversation": str(conversation.pk),
            "status": conversation.status,
            "server_url": vw_settings.LIVEKIT_URL,
            "participant_token": token.jwt,
            "room_name": conversation.room_name,
            "identity": conversation.identity,
            "expires_at": token.expires_at.isoformat().replace("+00:00", "Z"),
            "transcript": transcript,
            "agent": agent,
            "resume_window": vw_settings.RESUME_WINDOW,
        }
        return Response(body, headers=NO_STORE)

    @staticmethod
    def _agent(conversation: Conversation) -> str:
        """``present``, ``dispatched`` (it had left; sent back) or ``unknown``."""
        if conversation.agent_joined_at is None:
            # Its first dispatch (from the creating token) may still be on its way.
            return "unknown"
        present = agent_in_room(conversation.room_name)
        if present is None:
            return "unknown"
        if present:
            return "present"
        try:
            dispatch_agent(conversation.room_name, conversation.pk)
        except Exception as exc:
            logger.warning(
                "conversation %s: could not send the agent back (%s)",
                conversation.pk,
                type(exc).__name__,
            )
            raise errors.AgentUnavailable(
                vw_settings.AGENT_NAME, wait=vw_settings.HEARTBEAT_INTERVAL
            ) from exc
        return "dispatched"


@method_decorator(never_cache, name="dispatch")
class PersonaPublicView(VoiceWidgetAPIView):
    """The widget's public configuration for one active persona."""

    @extend_schema(
        operation_id="get_persona",
        responses={200: PublicPersonaSerializer, **_errors(404)},
    )
    def get(self, request: Request, slug: str) -> Response:
        persona = Persona.objects.active().filter(slug=slug).first()
        if persona is None:
            raise errors.PersonaNotFound()
        return Response(PublicPersonaSerializer(persona, context={"request": request}).data)


@method_decorator(never_cache, name="dispatch")
class HealthView(VoiceWidgetAPIView):
    """Whether a conversation could start now: LiveKit configured, workers alive."""

    @extend_schema(operation_id="get_health", responses={200: HealthSerializer})
    def get(self, request: Request) -> Response:
        agent_name = vw_settings.AGENT_NAME
        alive = WorkerHeartbeat.objects.alive(
            agent_name, within=timedelta(seconds=vw_settings.HEARTBEAT_TIMEOUT)
        )
        return Response(
            {
                "livekit_configured": vw_settings.livekit_configured,
                "agents_available": alive.count(),
                "agent_name": agent_name,
            }
        )


class LiveKitWebhookView(VoiceWidgetAPIView):
    """LiveKit's webhooks, verified with livekit-api's ``WebhookReceiver``.

    ``room_finished`` ends the room's conversation (reason ``room_finished``); the
    visitor's ``participant_left`` ends it with ``participant_left`` (with a ``RESUME_WINDOW``
    it only records the departure: a reload may come back), and the visitor's
    ``participant_joined`` records the join (the conversation then keeps its place under
    the persona's concurrency limit until it ends). Ending is
    idempotent, so LiveKit's retries and repeated events change nothing. Events for
    rooms we did not create are acknowledged and ignored.
    """

    parser_classes: list[Any] = []  # the signature covers the raw body; we parse it ourselves

    @extend_schema(
        operation_id="livekit_webhook",
        request={"application/webhook+json": dict},
        responses={200: WebhookResponseSerializer, **_errors(400, 401, 503)},
    )
    def post(self, request: Request) -> Response:
        if not vw_settings.livekit_configured:
            raise errors.LiveKitNotConfigured()
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            auth = auth[7:]
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.InvalidRequest("The webhook body is not UTF-8.") from exc
        receiver = WebhookReceiver(
            TokenVerifier(vw_settings.LIVEKIT_API_KEY, vw_settings.LIVEKIT_API_SECRET)
        )
        try:
            with dev_secret_warning_silenced():
                event = receiver.receive(body, auth.strip())
        except ProtobufParseError as exc:
            raise errors.InvalidRequest("The webhook body is not a LiveKit event.") from exc
        except Exception as exc:  # jwt errors, missing sha256, hash mismatch
            raise errors.InvalidSignature() from exc

        if not (is_storable_text(event.room.name) and is_storable_text(event.participant.identity)):
            raise errors.InvalidRequest(
                "The webhook's room name or participant identity holds a NUL character "
                "or an unpaired surrogate."
            )
        handled = False
        conversation = (
            Conversation.objects.filter(room_name=event.room.name).first()
            if event.room.name
            else None
        )
        if conversation is not None:
            if event.event == "room_finished":
                handled = end_conversation(conversation.pk, EndReason.ROOM_FINISHED)
            elif event.participant.identity == conversation.identity:
                if event.event == "participant_joined":
                    handled = mark_visitor_joined(conversation.pk)
                    handled = mark_visitor_returned(conversation.pk) or handled
                elif event.event == "participant_left" and resume_window():
                    # A reload may bring the visitor back: the worker ends the conversation
                    # if nobody returns within RESUME_WINDOW (or LiveKit closes the room).
                    handled = mark_visitor_left(conversation.pk)
                elif event.event == "participant_left":
                    handled = end_conversation(conversation.pk, EndReason.PARTICIPANT_LEFT)
        return Response({"event": event.event, "handled": handled})


class EndpointNotFoundView(VoiceWidgetAPIView):
    """Every other path under ``api/`` (a malformed id, a slug with spaces, a typo): our
    JSON 404 instead of the host's HTML page. Describes no endpoint in the schema."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise errors.EndpointNotFound()

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # Keep APPEND_SLASH's redirect to a real endpoint (``api/health`` → ``api/health/``),
        # which this catch-all would otherwise hide from CommonMiddleware.
        path = request.path_info
        if settings.APPEND_SLASH and not path.endswith("/"):
            try:
                match = resolve(path + "/", getattr(request, "urlconf", None))
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not type(self):
                return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
        return super().dispatch(request, *args, **kwargs)
