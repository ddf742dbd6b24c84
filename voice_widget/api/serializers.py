"""What the widget API accepts and answers (also the source of its OpenAPI schema)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..conf import vw_settings
from ..models import FeedbackRating, Persona
from .errors import ConsentRequired, ContextTooDeep, ContextTooLarge, InvalidContext

PAGE_URL_MAX_LENGTH = 2000  # Conversation.page_url
#: Longest end key the end and status requests accept (ours are 43 characters).
END_KEY_MAX_LENGTH = 200


def json_depth(value: Any) -> int:
    """Nesting depth of JSON data ({} and [] count 1 each); iterative, so any input is safe."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, the way it is stored."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def is_storable_text(text: str) -> bool:
    """False for text no database stores: NUL (PostgreSQL refuses it) or a lone surrogate
    (not encodable as UTF-8, so no database driver can send it)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_is_storable(value: Any) -> bool:
    """Every key and string in JSON data is storable text; iterative, so any input is safe."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not is_storable_text(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def check_page_context(value: Any) -> dict[str, Any]:
    """The browser's context, or a refusal: not an object (400), too deep (400), holding
    characters no database stores (400), too big (413)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidContext()
    max_depth = vw_settings.MAX_CONTEXT_DEPTH
    if json_depth(value) > max_depth:
        raise ContextTooDeep(
            _("The page context is nested deeper than %(depth)d levels.") % {"depth": max_depth}
        )
    if not json_is_storable(value):
        raise InvalidContext(
            _("The page context may not contain NUL characters (\\u0000) or unpaired surrogates.")
        )
    max_bytes = vw_settings.MAX_CONTEXT_BYTES
    if json_size(value) > max_bytes:
        raise ContextTooLarge(
            _("The page context is larger than %(bytes)d bytes.") % {"bytes": max_bytes}
        )
    return value


#: How far ahead of the server's clock a visitor's clock may be when it says it accepted.
CONSENT_CLOCK_SKEW = timedelta(minutes=10)


def accepted_consent(persona: Persona, consent: dict[str, Any] | None) -> dict[str, Any]:
    """The consent fields to store on the conversation; ``ConsentRequired`` when the persona
    has a notice and the request does not carry a fresh acceptance of this very version.
    The text stored is the persona's own, never what the browser sent."""
    version = persona.consent_version
    if not version:
        return {}
    if not consent or consent.get("version") != version:
        raise ConsentRequired()
    accepted_at = consent["accepted_at"]
    now = timezone.now()
    too_old = accepted_at < now - timedelta(seconds=vw_settings.CONSENT_MAX_AGE)
    if too_old or accepted_at > now + CONSENT_CLOCK_SKEW:
        raise ConsentRequired()
    return {
        "consent_text": persona.consent_text.strip(),
        "consent_version": version,
        "consent_at": min(accepted_at, now),
    }


class _StrictString:
    """DRF's string fields turn 42 into "42"; a JSON API should say the type is wrong."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_StrictString, serializers.CharField):
    default_error_messages = {"invalid": _lazy("Not a valid string.")}


class StrictSlugField(_StrictString, serializers.SlugField):
    pass


@extend_schema_field(OpenApiTypes.URI)
class StrictURLStringField(StrictCharField):
    """A URL as a string (checked by the serializer), described as ``format: uri``."""


class FixedFieldsSerializer(serializers.Serializer):
    """A serializer whose fields are never changed after declaration: each instance binds
    shallow copies of them instead of DRF's deep copies, which ran every field's
    ``__init__`` again (half of validating a session request). Validation only reads a
    field's validators and messages, so the copies can share them."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class ConsentSerializer(FixedFieldsSerializer):
    version = StrictCharField(max_length=20, help_text="The consent-version the widget showed.")
    accepted_at = serializers.DateTimeField(help_text="When the visitor accepted the notice.")


class SessionRequestSerializer(FixedFieldsSerializer):
    persona = StrictSlugField(max_length=60, help_text="The persona's slug.")
    context = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="Page context set by browser script: a JSON object, unverified visitor data.",
    )
    signed_context = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        help_text="The signed context the template tag rendered (voice_widget.signing).",
    )
    page_url = StrictURLStringField(
        required=False,
        allow_blank=True,
        max_length=PAGE_URL_MAX_LENGTH,
        help_text="The page the conversation starts on (http or https).",
    )
    consent = ConsentSerializer(
        required=False,
        allow_null=True,
        help_text="The visitor's acceptance of the persona's consent notice (required when "
        "the persona has one).",
    )
    clicked = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The visitor has already clicked to talk (no live preview was connected "
        "before): the agent greets as soon as it has joined, without waiting for the "
        "widget's voice_widget.start call.",
    )

    def validate_page_url(self, value: str) -> str:
        if not value:
            return ""
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise serializers.ValidationError(_("Enter an http or https URL."))
        return value


class SessionResponseSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    server_url = serializers.CharField(help_text="The LiveKit server to connect to.")
    participant_token = serializers.CharField(help_text="LiveKit access token (JWT).")
    room_name = serializers.CharField()
    identity = serializers.CharField()
    expires_at = serializers.DateTimeField(help_text="When the token stops admitting.")
    end_url = serializers.CharField(help_text="Path of this conversation's end endpoint.")
    status_url = serializers.CharField(help_text="Path of this conversation's status endpoint.")
    feedback_url = serializers.CharField(help_text="Path of this conversation's feedback endpoint.")

    resume_url = serializers.CharField(
        help_text="Path of the endpoint that rejoins this conversation after a reload."
    )
    resume_window = serializers.IntegerField(
        help_text="Seconds after the page goes during which it may be resumed (0: never)."
    )
    end_key = serializers.CharField(
        max_length=END_KEY_MAX_LENGTH,
        help_text="Secret that authorises the end, status and feedback requests.",
    )


#: Endings the visitor's browser may report; every other reason is the worker's to record.
VISITOR_END_REASONS = ["client_end", "participant_left", "error"]

#: The widget's error codes a browser may report with ``"reason": "error"``, and what each
#: tells an operator (stored as the conversation's ``end_detail``).
WIDGET_FAILURE_DETAILS = {
    "livekit_unreachable": "The visitor's browser could not reach the LiveKit server",
    "livekit_refused": (
        "The LiveKit server refused the visitor's token: check that LIVEKIT_API_KEY and "
        "LIVEKIT_API_SECRET are this server's"
    ),
    "offline": "The visitor's browser was offline",
    "mic_denied": "The visitor's browser refused the microphone (permission denied)",
    "mic_unavailable": "The visitor's browser found no usable microphone",
    "disconnected": "The visitor's browser lost its connection to the LiveKit room",
    "start_failed": "The agent joined but the visitor's browser could not start the conversation",
    "agent_unavailable": "No agent joined the room before the widget's agent timeout",
    "agent_failed": "The widget was told the agent could not join the room",
}


def widget_failure_detail(code: str) -> str:
    """The operator's detail for a failure the widget reported, e.g. ``livekit_unreachable``."""
    return f"{WIDGET_FAILURE_DETAILS[code]} ({code})."


class SessionEndRequestSerializer(serializers.Serializer):
    end_key = StrictCharField(max_length=END_KEY_MAX_LENGTH)
    reason = serializers.ChoiceField(
        choices=VISITOR_END_REASONS,
        default="client_end",
        help_text="client_end (the visitor ended it), participant_left (the page was closed) "
        "or error (the widget failed; detail says how).",
    )
    detail = StrictCharField(
        max_length=50,
        required=False,
        help_text="With reason error: the widget's error code, one of "
        + ", ".join(WIDGET_FAILURE_DETAILS)
        + ".",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        code = data.get("detail")
        if data["reason"] != "error":
            if code is not None:
                raise serializers.ValidationError(
                    {"detail": _("A detail is sent only with the reason error.")}
                )
            return data
        if code not in WIDGET_FAILURE_DETAILS:
            raise serializers.ValidationError(
                {
                    "detail": _(
                        "With the reason error, detail is one of the widget's error codes: %s."
                    )
                    % ", ".join(WIDGET_FAILURE_DETAILS)
                }
            )
        return data


class SessionStatusRequestSerializer(serializers.Serializer):
    end_key = StrictCharField(max_length=END_KEY_MAX_LENGTH)


#: The longest feedback comment (characters).
FEEDBACK_COMMENT_MAX_LENGTH = 1000


class FeedbackRequestSerializer(serializers.Serializer):
    end_key = StrictCharField(max_length=END_KEY_MAX_LENGTH)
    rating = serializers.ChoiceField(choices=FeedbackRating.values, help_text="up or down.")
    comment = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=FEEDBACK_COMMENT_MAX_LENGTH,
        help_text="What the visitor wrote, if anything.",
    )

    def validate_comment(self, value: str) -> str:
        if not is_storable_text(value):
            raise serializers.ValidationError(
                _("The comment holds a NUL character or an unpaired surrogate.")
            )
        return value


class FeedbackResponseSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    rating = serializers.CharField()
    comment = serializers.CharField(allow_blank=True)


class ResumeTurnSerializer(serializers.Serializer):
    role = serializers.CharField(help_text="user, agent or system")
    text = serializers.CharField()


class SessionResumeResponseSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    status = serializers.CharField()
    server_url = serializers.CharField()
    participant_token = serializers.CharField(
        help_text="Rejoins the same room under the same identity; dispatches nothing."
    )
    room_name = serializers.CharField()
    identity = serializers.CharField()
    expires_at = serializers.DateTimeField()
    transcript = ResumeTurnSerializer(many=True)
    agent = serializers.ChoiceField(
        choices=["present", "dispatched", "unknown"],
        help_text="present: the agent is in the room; dispatched: it had left and was sent "
        "back; unknown: LiveKit could not be asked.",
    )
    resume_window = serializers.IntegerField()


class SessionEndResponseSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    status = serializers.CharField()
    end_reason = serializers.CharField(allow_blank=True)


class PublicPersonaSerializer(serializers.ModelSerializer):
    """The widget's look and labels: nothing an editor keeps behind the scenes."""

    poster_url = serializers.SerializerMethodField()
    idle_clip_url = serializers.SerializerMethodField()
    has_avatar = serializers.BooleanField(read_only=True)
    consent_version = serializers.CharField(read_only=True)

    class Meta:
        model = Persona
        fields = [
            "name",
            "slug",
            "language",
            "preview_mode",
            "poster_url",
            "idle_clip_url",
            "has_avatar",
            "theme",
            "accent_color",
            "position",
            "button_label",
            "welcome_text",
            "start_mode",
            "interaction_mode",
            "feedback_enabled",
            "consent_text",
            "consent_url",
            "consent_version",
        ]
        read_only_fields = fields

    def _absolute(self, url: str) -> str:
        # Absolute, so the widget can load it from a page on another site.
        request = self.context.get("request")
        return request.build_absolute_uri(url) if url and request is not None else url

    def get_poster_url(self, persona: Persona) -> str:
        return self._absolute(persona.poster_url)

    def get_idle_clip_url(self, persona: Persona) -> str:
        return self._absolute(persona.idle_clip_url)


class HealthSerializer(serializers.Serializer):
    livekit_configured = serializers.BooleanField()
    agents_available = serializers.IntegerField()
    agent_name = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Stable machine-readable code.")
    detail = serializers.CharField(help_text="Human-readable message.")
    agent_name = serializers.CharField(
        required=False,
        help_text="With agent_unavailable only: the agent name no running worker serves.",
    )


class WebhookResponseSerializer(serializers.Serializer):
    event = serializers.CharField()
    handled = serializers.BooleanField()
