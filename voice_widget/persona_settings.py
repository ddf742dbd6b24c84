"""The settings a conversation runs with: one typed, read-only view of its persona snapshot.

A conversation stores its persona's settings as JSON when it is created
(``Conversation.persona_snapshot``), so editing the persona later never changes a running or
recorded conversation. ``PersonaSettings`` is that snapshot as one object with a typed field
per persona setting, built once (``Conversation.persona_settings``) and handed to every part
of the worker, like DRF's ``api_settings``. A key an older snapshot lacks (a setting added
since) takes the model field's default; keys of settings removed since are ignored.
No LiveKit import: the web side builds and tests it too.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Persona

#: Snapshot keys that are bookkeeping, not settings a conversation runs with.
NOT_SETTINGS = frozenset(["created_at", "updated_at"])


@dataclass(frozen=True)
class PersonaSettings:
    """A persona's settings as one conversation uses them (see the module docstring)."""

    id: int | None
    name: str
    slug: str
    is_active: bool
    description: str
    instructions: str
    greeting: str
    greeting_mode: str
    start_mode: str
    language: str
    closing_message: str
    pipeline_kind: str
    stt_provider: str
    stt_model: str
    stt_keyterms: str
    llm_provider: str
    llm_model: str
    llm_temperature: float | None
    llm_base_url: str
    azure_endpoint: str
    azure_deployment: str
    azure_api_version: str
    tts_provider: str
    tts_model: str
    tts_voice: str
    tts_speed: float | None
    tts_instructions: str
    realtime_provider: str
    realtime_model: str
    realtime_voice: str
    realtime_use_tts: bool
    realtime_turn_detection: str
    realtime_vad_threshold: float | None
    realtime_prefix_padding_ms: int | None
    realtime_silence_duration_ms: int | None
    realtime_eagerness: str
    stt_fallback_provider: str
    stt_fallback_model: str
    llm_fallback_provider: str
    llm_fallback_model: str
    tts_fallback_provider: str
    tts_fallback_model: str
    tts_fallback_voice: str
    turn_detection: str
    vad_threshold: float
    min_endpointing_delay: float
    max_endpointing_delay: float
    allow_interruptions: bool
    min_interruption_duration: float
    min_interruption_words: int
    false_interruption_timeout: float | None
    preemptive_generation: bool
    noise_cancellation: str
    avatar_provider: str
    avatar_id: str
    preview_mode: str
    preview_image: str
    preview_image_url: str
    preview_video: str
    preview_video_url: str
    theme: str
    accent_color: str
    position: str
    button_label: str
    welcome_text: str
    allowed_origins: str
    login_required: bool
    max_duration_seconds: int
    preview_idle_seconds: int
    max_concurrent_conversations: int | None
    daily_budget: Decimal | None
    daily_budget_unit: str
    enabled_tools: tuple[str, ...]
    interaction_mode: str
    feedback_enabled: bool
    consent_text: str
    consent_url: str
    page_tools: tuple[dict[str, Any], ...]

    # -- building -----------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> PersonaSettings:
        """The settings a stored snapshot holds, with today's defaults for keys it lacks."""
        values = dict(_defaults())
        values.update((name, snapshot[name]) for name in _field_names() if name in snapshot)
        return cls(**{name: _coerce(name, value) for name, value in values.items()})

    @classmethod
    def from_persona(cls, persona: Persona) -> PersonaSettings:
        """The settings of a persona as it is now (for checks, the console, old conversations)."""
        return cls.from_snapshot(persona.snapshot())

    # -- derived values -----------------------------------------------------------------

    @property
    def is_realtime(self) -> bool:
        return self.pipeline_kind == "realtime"

    @property
    def base_language(self) -> str:
        """``"pt"`` for ``"pt-BR"``: what providers that take no region want."""
        return (self.language or "en").split("-")[0].lower()

    @property
    def keyterms(self) -> list[str]:
        """The speech-recognition key terms, one a line, blank lines dropped."""
        return [line.strip() for line in self.stt_keyterms.splitlines() if line.strip()]

    @property
    def has_avatar(self) -> bool:
        return self.avatar_provider not in ("", "none")


@functools.cache
def _field_names() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(PersonaSettings))


@functools.cache
def _defaults() -> dict[str, Any]:
    """Each setting's model default: the one place defaults live is the ``Persona`` model."""
    from .models import Persona

    defaults = {}
    for name in _field_names():
        default = Persona._meta.get_field(name).get_default()
        # A TextChoices member as its plain value, as a snapshot stores it.
        defaults[name] = str(default) if isinstance(default, str) else default
    return defaults


def _coerce(name: str, value: Any) -> Any:
    """JSON back to the field's type: the snapshot stores decimals as strings, lists for
    tuples, files as URLs, and choices as plain strings."""
    if name == "enabled_tools":
        return tuple(str(item) for item in value or ())
    if name == "page_tools":
        # As declared; validated by Persona.clean() and again where the worker builds them.
        return tuple(value) if isinstance(value, list | tuple) else ()
    if name == "daily_budget":
        return None if value in (None, "") else Decimal(str(value))
    if isinstance(value, str):
        return str(value)  # a TextChoices member becomes its plain value
    if value is None and isinstance(_defaults()[name], str):
        return ""  # a text setting stored as null by hand or an old bug: read as empty
    return value
