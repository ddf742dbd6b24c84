"""Personas editors shape in admin, and the record of each conversation."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    FileExtensionValidator,
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
)
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from . import providers
from .costs import persona_unpriced_models
from .persona_settings import PersonaSettings
from .providers import default_tts_voice
from .tools import page_tool_problems, registry
from .validators import (
    split_origins,
    validate_hex_color,
    validate_language_tag,
    validate_origins_text,
)

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "webp", "gif", "avif"]
VIDEO_EXTENSIONS = ["mp4", "webm"]


class PipelineKind(models.TextChoices):
    PIPELINE = "pipeline", _("Speech-to-text → language model → text-to-speech")
    REALTIME = "realtime", _("Realtime speech-to-speech model")


class GreetingMode(models.TextChoices):
    SAY = "say", _("Say the greeting word for word")
    GENERATE = "generate", _("Let the model greet (the greeting is a hint)")


class StartMode(models.TextChoices):
    CLICK = "click", _("Wait for the visitor's click (click-to-talk)")
    IMMEDIATE = "immediate", _("Start as soon as the visitor joins")


# The provider choices come from the catalogue (voice_widget.providers): a provider added there
# is a choice here, with the same value and label.
STTProvider = providers.choices(providers.STT, "STTProvider")
LLMProvider = providers.choices(providers.LLM, "LLMProvider")
TTSProvider = providers.choices(providers.TTS, "TTSProvider")
RealtimeProvider = providers.choices(providers.REALTIME, "RealtimeProvider")


class RealtimeTurnDetection(models.TextChoices):
    SERVER_VAD = "server_vad", _("Server VAD (silence based)")
    SEMANTIC_VAD = "semantic_vad", _("Semantic VAD (meaning based)")


class SemanticEagerness(models.TextChoices):
    AUTO = "auto", _("Auto")
    LOW = "low", _("Low (patient)")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High (quick)")


class TurnDetection(models.TextChoices):
    AUDIO = "audio", _("Turn-detector model (LiveKit's, runs on the worker, no download)")
    VAD = "vad", _("Voice activity only (silence ends the turn)")
    STT = "stt", _("Speech-to-text endpointing")
    REALTIME = "realtime_llm", _("Realtime model decides")


class NoiseCancellation(models.TextChoices):
    OFF = "off", _("Off")
    BVC = "bvc", _("Background voice cancellation (BVC)")
    BVC_TELEPHONY = "bvc_telephony", _("BVC, with the telephony model for phone callers")


AvatarProvider = providers.choices(
    providers.AVATAR, "AvatarProvider", none=(providers.NO_AVATAR, _("No avatar (voice only)"))
)


class PreviewMode(models.TextChoices):
    LIVE = "live", _("Live avatar, muted, until the visitor clicks")
    POSTER = "poster", _("Idle clip or poster image")
    NONE = "none", _("Button only")


class BudgetUnit(models.TextChoices):
    MONEY = "money", _("money (the price table's currency)")
    MINUTES = "minutes", _("conversation minutes")


class Theme(models.TextChoices):
    AUTO = "auto", _("Follow the visitor's system")
    LIGHT = "light", _("Light")
    DARK = "dark", _("Dark")


class Position(models.TextChoices):
    FLOATING = "floating", _("Floating button in the corner")
    INLINE = "inline", _("Inline, where the tag is placed")
    FULLPAGE = "fullpage", _("Full page, the page's main content (a help page)")


class InteractionMode(models.TextChoices):
    VOICE_AND_TEXT = "voice_text", _("Talk or type")
    TEXT = "text", _("Type only (no microphone, no sound)")
    VOICE = "voice", _("Talk only")


def consent_version(text: str, url: str) -> str:
    """A short fingerprint of a consent notice: an edited notice is asked for again."""
    if not text.strip():
        return ""
    return hashlib.sha256(f"{text.strip()}\n{url.strip()}".encode()).hexdigest()[:12]


#: Languages LiveKit's turn-detector model (``inference.TurnDetector``, turn-detector-v1-mini,
#: an audio model that ships with livekit-agents) knows. Other languages use voice activity.
AUDIO_TURN_DETECTOR_LANGUAGES = frozenset(
    ["ar", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pt", "tr", "zh"]
)


def turn_detector_knows(language: str) -> bool:
    """Whether LiveKit's turn-detector model knows this BCP-47 language (by its base tag)."""
    return (language or "en").split("-")[0].lower() in AUDIO_TURN_DETECTOR_LANGUAGES


LIVEKIT_MODEL_FORMAT = _(
    "LiveKit Inference models are written provider/model, e.g. deepgram/nova-3, "
    "openai/gpt-4.1-mini or cartesia/sonic-2."
)


#: What an editor reads when a provider lacks a field the catalogue says it requires.
REQUIRED_FIELD_MESSAGES = {
    "llm_base_url": _("%(provider)s needs its base URL, e.g. http://127.0.0.1:11434/v1."),
    "azure_endpoint": _("%(provider)s needs the endpoint of your resource."),
}


def _routes_models(provider: str) -> bool:
    entry = providers.get(provider)
    return bool(entry and entry.routes_models)


def _needs_voice(provider: str) -> bool:
    entry = providers.get(provider)
    return bool(entry and entry.needs_voice)


def _names_with(stage: str, capability: str) -> str:
    return providers.names(providers.with_capability(stage, capability), stage)


def default_instructions() -> str:
    """A first system prompt that already works, in the editor's language (a field default)."""
    return str(
        _(
            "You are a friendly, helpful assistant on this website. Your answers are spoken "
            "aloud, so keep them short: one to three sentences, no lists, no formatting. If "
            "you do not know something, say so and suggest whom the visitor could ask."
        )
    )


def default_greeting(name: str) -> str:
    """The greeting a persona says when the editor wrote none, in the editor's language."""
    return str(_("Hello, I'm %(name)s. How can I help you?") % {"name": name})


class PersonaQuerySet(models.QuerySet):
    def active(self) -> PersonaQuerySet:
        return self.filter(is_active=True)


def _preview_upload_to(instance: Persona, filename: str) -> str:
    return f"voice_widget/previews/{instance.slug or 'persona'}/{filename}"


class Persona(models.Model):
    """Everything a content editor may change about an agent. No API key is ever stored here."""

    # Identity
    name = models.CharField(_("name"), max_length=100, help_text=_("Shown to visitors."))
    slug = models.SlugField(
        _("slug"),
        max_length=60,
        unique=True,
        help_text=_('Used in the template tag: {% voice_widget "slug" %}.'),
    )
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Inactive personas render nothing and start no conversations."),
    )
    description = models.TextField(
        _("description"), blank=True, help_text=_("Internal notes for editors; never sent.")
    )

    # Conversation
    instructions = models.TextField(
        _("instructions"),
        default=default_instructions,
        help_text=_("The system prompt: who the agent is, what it knows, how it speaks."),
    )
    greeting = models.TextField(
        _("greeting"),
        blank=True,
        help_text=_(
            "The first thing the agent says after the visitor clicks start. Empty: "
            "“Hello, I'm …” with the persona's name."
        ),
    )
    greeting_mode = models.CharField(
        _("greeting mode"), max_length=20, choices=GreetingMode, default=GreetingMode.SAY
    )
    start_mode = models.CharField(
        _("start"),
        max_length=20,
        choices=StartMode,
        default=StartMode.CLICK,
        help_text=_("Start immediately only on pages without a preview."),
    )
    language = models.CharField(
        _("language"),
        max_length=35,
        default="en",
        validators=[validate_language_tag],
        help_text=_("BCP-47 tag, e.g. en, en-US, de-DE. Sets speech recognition and labels."),
    )
    closing_message = models.CharField(
        _("closing line"),
        max_length=300,
        blank=True,
        default="We are out of time for today. Thank you for talking with me, goodbye!",
        help_text=_(
            "Said when the conversation reaches its maximum length, or when an editor ends it"
            " from the live conversations page."
        ),
    )

    # Voice pipeline
    pipeline_kind = models.CharField(
        _("pipeline"), max_length=20, choices=PipelineKind, default=PipelineKind.PIPELINE
    )
    stt_provider = models.CharField(
        _("speech-to-text provider"),
        max_length=20,
        choices=STTProvider,
        default=STTProvider.DEEPGRAM,
        blank=True,
    )
    stt_model = models.CharField(
        _("speech-to-text model"),
        max_length=100,
        default="nova-3",
        blank=True,
        help_text=_(
            "e.g. nova-3 (Deepgram), gpt-4o-transcribe (OpenAI), deepgram/nova-3 "
            "(LiveKit Inference)."
        ),
    )
    stt_keyterms = models.TextField(
        _("key terms"),
        blank=True,
        help_text=_(
            "Words the recogniser should expect (product names…), one per line. Deepgram only."
        ),
    )
    llm_provider = models.CharField(
        _("language model provider"),
        max_length=30,
        choices=LLMProvider,
        default=LLMProvider.OPENAI,
        blank=True,
    )
    llm_model = models.CharField(
        _("language model"),
        max_length=100,
        default="gpt-4o-mini",
        blank=True,
        help_text=_(
            "e.g. gpt-4o-mini, llama3.1 (Ollama), openai/gpt-4.1-mini (LiveKit "
            "Inference). For Azure, the deployment below is used (empty: this name)."
        ),
    )
    llm_temperature = models.FloatField(
        _("temperature"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text=_(
            "0 is focused, 1 is creative. Empty: the provider's default. Realtime models "
            "take no temperature."
        ),
    )
    llm_base_url = models.URLField(
        _("OpenAI-compatible base URL"),
        blank=True,
        help_text=format_lazy(
            _(
                "For an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 for Ollama. "
                "A key, if the server needs one, comes from {variable}."
            ),
            variable=providers.key_env_var(providers.OPENAI_COMPATIBLE),
        ),
    )
    azure_endpoint = models.URLField(
        _("Azure endpoint"),
        blank=True,
        help_text=format_lazy(
            _("e.g. https://my-resource.openai.azure.com. The key comes from {variable}."),
            variable=providers.key_env_var(providers.AZURE_OPENAI),
        ),
    )
    azure_deployment = models.CharField(
        _("Azure deployment"),
        max_length=100,
        blank=True,
        help_text=_("The deployment's name in your Azure resource. Empty: the model name."),
    )
    azure_api_version = models.CharField(
        _("Azure API version"),
        max_length=40,
        blank=True,
        default="2024-10-01-preview",
        help_text=_("For the Azure language model; Azure Realtime uses the current API."),
    )
    tts_provider = models.CharField(
        _("text-to-speech provider"),
        max_length=20,
        choices=TTSProvider,
        default=TTSProvider.CARTESIA,
        blank=True,
    )
    tts_model = models.CharField(
        _("text-to-speech model"),
        max_length=100,
        default="sonic-2",
        blank=True,
        help_text=_(
            "e.g. sonic-2 (Cartesia), gpt-4o-mini-tts (OpenAI), "
            "cartesia/sonic-2 (LiveKit Inference)."
        ),
    )
    tts_voice = models.CharField(
        _("voice"),
        max_length=100,
        blank=True,
        help_text=_(
            "Pick a voice or type any voice id of the provider. Empty: the provider's "
            "default voice for the persona's language."
        ),
    )
    tts_speed = models.FloatField(
        _("speaking speed"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.5), MaxValueValidator(2.0)],
        help_text=_("1.0 is normal. Empty: the provider's default."),
    )
    tts_instructions = models.TextField(
        _("voice instructions"),
        blank=True,
        help_text=_("How the voice should sound (OpenAI gpt-4o-mini-tts only)."),
    )
    realtime_provider = models.CharField(
        _("realtime provider"),
        max_length=20,
        choices=RealtimeProvider,
        default=RealtimeProvider.OPENAI,
        blank=True,
    )
    realtime_model = models.CharField(
        _("realtime model"),
        max_length=100,
        blank=True,
        default="gpt-realtime",
        help_text=_(
            "e.g. gpt-realtime. For Azure, the deployment below is used (empty: this name)."
        ),
    )
    realtime_voice = models.CharField(
        _("realtime voice"),
        max_length=50,
        blank=True,
        help_text=_("e.g. marin, cedar, alloy, coral. Empty: the model's default voice."),
    )
    realtime_use_tts = models.BooleanField(
        _("speak with the text-to-speech voice"),
        default=False,
        help_text=_("The realtime model answers in text and the TTS settings above speak it."),
    )
    realtime_turn_detection = models.CharField(
        _("realtime turn detection"),
        max_length=20,
        choices=RealtimeTurnDetection,
        default=RealtimeTurnDetection.SERVER_VAD,
        blank=True,
    )
    realtime_vad_threshold = models.FloatField(
        _("server VAD threshold"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Higher needs louder speech (noisy rooms). Default 0.5."),
    )
    realtime_prefix_padding_ms = models.PositiveIntegerField(
        _("server VAD prefix padding (ms)"), null=True, blank=True
    )
    realtime_silence_duration_ms = models.PositiveIntegerField(
        _("server VAD silence duration (ms)"),
        null=True,
        blank=True,
        help_text=_("How long a pause ends the visitor's turn. Longer is more patient."),
    )
    realtime_eagerness = models.CharField(
        _("semantic VAD eagerness"),
        max_length=10,
        choices=SemanticEagerness,
        default=SemanticEagerness.AUTO,
        blank=True,
    )
    stt_fallback_provider = models.CharField(
        _("fallback speech-to-text provider"), max_length=20, choices=STTProvider, blank=True
    )
    stt_fallback_model = models.CharField(_("fallback STT model"), max_length=100, blank=True)
    llm_fallback_provider = models.CharField(
        _("fallback language model provider"), max_length=30, choices=LLMProvider, blank=True
    )
    llm_fallback_model = models.CharField(_("fallback LLM model"), max_length=100, blank=True)
    tts_fallback_provider = models.CharField(
        _("fallback text-to-speech provider"), max_length=20, choices=TTSProvider, blank=True
    )
    tts_fallback_model = models.CharField(_("fallback TTS model"), max_length=100, blank=True)
    tts_fallback_voice = models.CharField(
        _("fallback voice"),
        max_length=100,
        blank=True,
        help_text=_("The fallback provider's voice. Empty: its default voice."),
    )

    # Turn-taking
    turn_detection = models.CharField(
        _("turn detection"),
        max_length=20,
        choices=TurnDetection,
        default=TurnDetection.AUDIO,
        help_text=_(
            "How the agent decides the visitor has finished speaking. The turn-detector "
            "model knows Arabic, Chinese, Dutch, English, French, German, Hindi, Indonesian, "
            "Italian, Japanese, Korean, Portuguese, Spanish and Turkish; for other languages "
            "use voice activity."
        ),
    )
    vad_threshold = models.FloatField(
        _("voice activity threshold"),
        default=0.5,
        validators=[MinValueValidator(0.05), MaxValueValidator(0.95)],
        help_text=_("How sure the voice detector must be that someone speaks (0.05–0.95)."),
    )
    min_endpointing_delay = models.FloatField(
        _("minimum pause before answering (s)"),
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(10.0)],
    )
    max_endpointing_delay = models.FloatField(
        _("maximum wait before answering (s)"),
        default=3.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(30.0)],
        help_text=_("Upper bound when the visitor seems not finished yet."),
    )
    allow_interruptions = models.BooleanField(_("visitor may interrupt"), default=True)
    min_interruption_duration = models.FloatField(
        _("minimum interruption (s)"),
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(5.0)],
    )
    min_interruption_words = models.PositiveSmallIntegerField(
        _("minimum interruption words"),
        default=0,
        help_text=_("Words the visitor must say to interrupt; 0 means any speech."),
    )
    false_interruption_timeout = models.FloatField(
        _("false interruption timeout (s)"),
        null=True,
        blank=True,
        default=2.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(10.0)],
        help_text=_(
            "If an interruption has no words within this time, the agent resumes. "
            "Empty: never resume."
        ),
    )
    preemptive_generation = models.BooleanField(
        _("preemptive generation"),
        default=False,
        help_text=_("Start answering while the visitor is still finishing: faster, costs more."),
    )
    noise_cancellation = models.CharField(
        _("noise cancellation"),
        max_length=20,
        choices=NoiseCancellation,
        default=NoiseCancellation.OFF,
        help_text=_(
            "Removes background voices and noise from the visitor's audio, chosen per "
            "participant: phone (SIP) callers get the telephony model when selected. Needs "
            "LiveKit Cloud."
        ),
    )

    # Avatar & preview
    avatar_provider = models.CharField(
        _("avatar"), max_length=20, choices=AvatarProvider, default=AvatarProvider.NONE
    )
    avatar_id = models.CharField(
        _("avatar id"),
        max_length=100,
        blank=True,
        help_text=format_lazy(
            _(
                "The avatar's id at Beyond Presence. The key comes from {variable}. A live "
                "avatar is billed by the minute, also while the preview idles."
            ),
            variable=providers.key_env_var(providers.BEY),
        ),
    )
    preview_mode = models.CharField(
        _("preview"),
        max_length=20,
        choices=PreviewMode,
        default=PreviewMode.NONE,
        help_text=_(
            "A live preview spends avatar minutes while the page is open; a poster or "
            "idle clip costs nothing until the visitor clicks."
        ),
    )
    preview_image = models.FileField(
        _("poster image"),
        upload_to=_preview_upload_to,
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
    )
    preview_image_url = models.URLField(_("poster image URL"), blank=True)
    preview_video = models.FileField(
        _("idle clip"),
        upload_to=_preview_upload_to,
        blank=True,
        validators=[FileExtensionValidator(VIDEO_EXTENSIONS)],
        help_text=_("A short looping video (mp4 or webm), played muted."),
    )
    preview_video_url = models.URLField(_("idle clip URL"), blank=True)

    # Widget look
    theme = models.CharField(_("theme"), max_length=10, choices=Theme, default=Theme.AUTO)
    accent_color = models.CharField(
        _("accent colour"),
        max_length=7,
        default="#2563eb",
        validators=[validate_hex_color],
        help_text=_("Six hex digits, e.g. #2563eb."),
    )
    position = models.CharField(
        _("position"), max_length=10, choices=Position, default=Position.FLOATING
    )
    button_label = models.CharField(
        _("button label"),
        max_length=60,
        blank=True,
        help_text=_("Empty: “Start conversation” in the persona's language."),
    )
    welcome_text = models.CharField(
        _("welcome text"),
        max_length=200,
        blank=True,
        help_text=_("A line shown above the button, e.g. “Questions? Ask Paula.”"),
    )
    interaction_mode = models.CharField(
        _("talk or type"),
        max_length=20,
        choices=InteractionMode,
        default=InteractionMode.VOICE_AND_TEXT,
        help_text=_(
            "“Type only” asks for no microphone and plays no sound: the agent reads and "
            "writes, with no speech recognition or speech synthesis (cheaper)."
        ),
    )
    feedback_enabled = models.BooleanField(
        _("ask for feedback"),
        default=False,
        help_text=_("At the end, the visitor may rate the conversation (thumbs up or down)."),
    )
    consent_text = models.TextField(
        _("consent notice"),
        blank=True,
        max_length=1000,
        validators=[MaxLengthValidator(1000)],
        help_text=_(
            "Shown before the first start, e.g. “This conversation is recorded and processed "
            "by AI providers.” The visitor accepts it once for VOICE_WIDGET"
            '["CONSENT_MAX_AGE"]; editing it asks again. Empty: no notice.'
        ),
    )
    consent_url = models.URLField(
        _("privacy page"),
        blank=True,
        help_text=_("Linked from the consent notice, e.g. https://example.com/privacy/."),
    )

    # Access & limits
    allowed_origins = models.TextField(
        _("allowed origins"),
        blank=True,
        validators=[validate_origins_text],
        help_text=_(
            "Other sites that may embed this persona, one per line, e.g. "
            "https://shop.example.com. This site itself is always allowed."
        ),
    )
    login_required = models.BooleanField(
        _("login required"), default=False, help_text=_("Only logged-in users may talk.")
    )
    max_duration_seconds = models.PositiveIntegerField(
        _("maximum conversation length (s)"),
        default=600,
        validators=[MinValueValidator(30), MaxValueValidator(4 * 60 * 60)],
    )
    preview_idle_seconds = models.PositiveIntegerField(
        _("preview idle timeout (s)"),
        default=120,
        validators=[MinValueValidator(10), MaxValueValidator(60 * 60)],
        help_text=_("If nobody clicks start within this time, the agent (and avatar) leave."),
    )
    max_concurrent_conversations = models.PositiveIntegerField(
        _("maximum concurrent conversations"),
        null=True,
        blank=True,
        help_text=_("Empty: no limit."),
    )
    daily_budget = models.DecimalField(
        _("daily budget"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_(
            "When today's conversations have cost this much (or lasted this many minutes), "
            "new ones are refused until midnight; those in progress finish. Empty: no budget."
        ),
    )
    daily_budget_unit = models.CharField(
        _("budget in"), max_length=10, choices=BudgetUnit, default=BudgetUnit.MONEY
    )

    # Tools
    enabled_tools = models.JSONField(
        _("tools"),
        default=list,
        blank=True,
        help_text=_("Functions the agent may call. Host projects register more in code."),
    )
    page_tools = models.JSONField(
        _("page tools"),
        default=list,
        blank=True,
        help_text=_(
            "Functions of the page the agent may call; the page registers them with "
            'widget.registerTool(). A JSON list: [{"name": "...", "description": "...", '
            '"parameters": {JSON schema}}].'
        ),
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = PersonaQuerySet.as_manager()
    #: One version per save, whatever saves it (admin, actions, commands, shell): a
    #: post_save receiver of django-simple-history writes a full copy of the row.
    history = HistoricalRecords(
        verbose_name=_("persona version"),
        verbose_name_plural=_("persona versions"),
        history_change_reason_field=models.TextField(null=True),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("persona")
        verbose_name_plural = _("personas")

    def __str__(self) -> str:
        return self.name

    @property
    def embed_snippet(self) -> str:
        return f'{{% load voice_widget %}}{{% voice_widget "{self.slug}" %}}'

    @property
    def allowed_origin_list(self) -> list[str]:
        return split_origins(self.allowed_origins)

    @property
    def poster_url(self) -> str:
        if self.preview_image:
            return self.preview_image.url
        return self.preview_image_url

    @property
    def idle_clip_url(self) -> str:
        if self.preview_video:
            return self.preview_video.url
        return self.preview_video_url

    @property
    def is_realtime(self) -> bool:
        return self.pipeline_kind == PipelineKind.REALTIME

    @property
    def has_avatar(self) -> bool:
        return self.avatar_provider != AvatarProvider.NONE

    @property
    def consent_version(self) -> str:
        return consent_version(self.consent_text, self.consent_url)

    @property
    def text_only(self) -> bool:
        return self.interaction_mode == InteractionMode.TEXT

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}

        def add(field: str, message: Any) -> None:
            errors.setdefault(field, []).append(message)

        self._fill_defaults()
        self._clean_conversation(add)
        if self.is_realtime:
            self._clean_realtime(add)
        else:
            self._clean_pipeline(add)
        self._clean_turn_taking(add)
        self._clean_avatar_and_preview(add)
        if self.text_only and self.has_avatar:
            add(
                "interaction_mode",
                _("An avatar speaks; choose “Talk or type” or remove the avatar."),
            )
        if self.consent_url and not self.consent_text.strip():
            add("consent_text", _("Write the notice the privacy page link belongs to."))
        self._clean_budget(add)

        unknown = [name for name in self.enabled_tools or [] if name not in registry]
        if not isinstance(self.enabled_tools, list):
            add("enabled_tools", _("Tools must be a list of tool names."))
        elif unknown:
            add(
                "enabled_tools",
                _("These tools are not registered in this site's code: %(names)s.")
                % {"names": ", ".join(map(str, unknown))},
            )
        for problem in page_tool_problems(self.page_tools):
            add("page_tools", problem)
        if errors:
            raise ValidationError(errors)

    def _fill_defaults(self) -> None:
        """What an editor may leave empty: the greeting and the voices."""
        if self.greeting_mode == GreetingMode.SAY and not self.greeting.strip() and self.name:
            self.greeting = default_greeting(self.name.strip())
        speaks_with_tts = not self.is_realtime or self.realtime_use_tts
        if speaks_with_tts and not self.tts_voice.strip():
            self.tts_voice = default_tts_voice(self.tts_provider, self.language, self.tts_model)
        if self.tts_fallback_provider and not self.tts_fallback_voice.strip():
            self.tts_fallback_voice = default_tts_voice(
                self.tts_fallback_provider, self.language, self.tts_fallback_model
            )

    def _clean_conversation(self, add: Any) -> None:
        if self.greeting_mode == GreetingMode.SAY and not self.greeting.strip():
            add(
                "greeting",
                _("Write the greeting to say word for word, or choose “Let the model greet”."),
            )
        if self.start_mode == StartMode.IMMEDIATE and self.preview_mode == PreviewMode.LIVE:
            add(
                "start_mode",
                _("A live preview waits for the visitor's click; it cannot start immediately."),
            )

    def _clean_pipeline(self, add: Any) -> None:
        for prefix, label in (
            ("stt", _("speech-to-text")),
            ("llm", _("language model")),
            ("tts", _("text-to-speech")),
        ):
            if not getattr(self, f"{prefix}_provider"):
                add(f"{prefix}_provider", _("Choose a %(stage)s provider.") % {"stage": label})
            if not getattr(self, f"{prefix}_model").strip():
                add(f"{prefix}_model", _("Name the %(stage)s model.") % {"stage": label})
        self._clean_llm_provider(add, self.llm_provider)
        self._clean_tts_voice(add)
        stt = providers.get(self.stt_provider)
        if self.stt_keyterms.strip() and not (stt and stt.keyterms):
            add(
                "stt_keyterms",
                _("Key terms work with %(providers)s only.")
                % {"providers": _names_with(providers.STT, "keyterms")},
            )
        if self.turn_detection == TurnDetection.REALTIME:
            add(
                "turn_detection",
                _("“Realtime model decides” needs the realtime pipeline; pick another mode."),
            )
        if self.turn_detection == TurnDetection.STT and stt and not stt.detects_end_of_turn:
            add(
                "turn_detection",
                _(
                    "%(provider)s speech-to-text does not detect the end of a turn; use the "
                    "turn-detector model or voice activity instead."
                )
                % {"provider": stt.name_in(providers.STT)},
            )
        self._clean_fallbacks(add, ("stt", "llm", "tts"))
        if self.llm_fallback_provider:
            self._clean_llm_provider(add, self.llm_fallback_provider, fallback=True)

    def _clean_fallbacks(self, add: Any, stages: tuple[str, ...]) -> None:
        for stage in stages:
            provider = getattr(self, f"{stage}_provider")
            model = getattr(self, f"{stage}_model").strip()
            fallback = getattr(self, f"{stage}_fallback_provider")
            fallback_model = getattr(self, f"{stage}_fallback_model").strip()
            if _routes_models(provider) and model and "/" not in model:
                add(f"{stage}_model", LIVEKIT_MODEL_FORMAT)
            if fallback and not fallback_model:
                add(f"{stage}_fallback_model", _("Name the fallback model."))
            if fallback_model and not fallback:
                add(f"{stage}_fallback_provider", _("Choose the fallback provider."))
            if _routes_models(fallback) and fallback_model and "/" not in fallback_model:
                add(f"{stage}_fallback_model", LIVEKIT_MODEL_FORMAT)
            if fallback and fallback == provider and fallback_model == model:
                add(
                    f"{stage}_fallback_model",
                    _("The fallback is the same as the primary; choose a different one."),
                )
        if (
            "tts" in stages
            and _needs_voice(self.tts_fallback_provider)
            and not self.tts_fallback_voice.strip()
        ):
            add("tts_fallback_voice", _("Choose the voice the fallback speaks with."))

    def _clean_llm_provider(self, add: Any, provider: str, fallback: bool = False) -> None:
        self._clean_required_fields(
            add, providers.LLM, provider, "llm_fallback_provider" if fallback else ""
        )
        uses_base_url = [
            entry
            for entry in providers.serving(providers.LLM)
            if "llm_base_url" in entry.required_fields
        ]
        chosen = {self.llm_provider, self.llm_fallback_provider}
        if not fallback and self.llm_base_url and not chosen & {p.id for p in uses_base_url}:
            add(
                "llm_base_url",
                _("A base URL is only used with “%(providers)s”; clear it or switch the provider.")
                % {"providers": providers.names(uses_base_url, providers.LLM)},
            )

    def _clean_required_fields(
        self, add: Any, stage: str, provider: str, fallback_field: str = ""
    ) -> None:
        """The persona fields the catalogue says ``provider`` cannot work without.

        For a fallback the message also stands beside the fallback's choice.
        """
        entry = providers.get(provider)
        for name in entry.required_fields if entry else ():
            if str(getattr(self, name) or "").strip():
                continue
            message = REQUIRED_FIELD_MESSAGES[name] % {"provider": entry.name_in(stage)}
            add(name, message)
            if fallback_field:
                add(fallback_field, message)

    def _clean_tts_voice(self, add: Any) -> None:
        if _needs_voice(self.tts_provider) and not self.tts_voice.strip():
            add("tts_voice", _("Choose the voice the agent speaks with."))
        tts = providers.get(self.tts_provider)
        if self.tts_instructions.strip() and not (tts and tts.voice_instructions):
            add(
                "tts_instructions",
                _("Voice instructions work with %(providers)s text-to-speech only.")
                % {"providers": _names_with(providers.TTS, "voice_instructions")},
            )

    def _clean_realtime(self, add: Any) -> None:
        if not self.realtime_provider:
            add("realtime_provider", _("Choose the realtime provider."))
        if not self.realtime_model.strip():
            add("realtime_model", _("Name the realtime model (or Azure deployment)."))
        self._clean_required_fields(add, providers.REALTIME, self.realtime_provider)
        if self.realtime_use_tts:
            if not self.tts_provider:
                add("tts_provider", _("Choose a text-to-speech provider for the voice."))
            if not self.tts_model.strip():
                add("tts_model", _("Name the text-to-speech model."))
            self._clean_tts_voice(add)
            self._clean_fallbacks(add, ("tts",))
        elif self.tts_fallback_provider:
            add(
                "tts_fallback_provider",
                _("A text-to-speech fallback needs “speak with the text-to-speech voice”."),
            )
        for stage in ("stt", "llm"):
            if getattr(self, f"{stage}_fallback_provider"):
                add(
                    f"{stage}_fallback_provider",
                    _(
                        "A realtime model replaces the speech-to-text and language model "
                        "stages; clear this fallback."
                    ),
                )
        if self.llm_temperature is not None:
            add("llm_temperature", _("Realtime models take no temperature; clear it."))
        if self.turn_detection == TurnDetection.REALTIME and not self.allow_interruptions:
            add(
                "allow_interruptions",
                _(
                    "When the realtime model decides the turns, the visitor can always "
                    "interrupt; choose “Voice activity only” to turn interruptions off."
                ),
            )
        if self.turn_detection not in (TurnDetection.REALTIME, TurnDetection.VAD):
            add(
                "turn_detection",
                _(
                    "With a realtime model, let the realtime model decide or use voice "
                    "activity only."
                ),
            )
        server_vad_fields = (
            "realtime_vad_threshold",
            "realtime_prefix_padding_ms",
            "realtime_silence_duration_ms",
        )
        for name in server_vad_fields:
            if getattr(self, name) is None:
                continue
            if self.turn_detection == TurnDetection.VAD:
                add(
                    name,
                    _(
                        "Server VAD settings apply only when the realtime model decides the "
                        "turns; clear them or choose “Realtime model decides”."
                    ),
                )
            elif self.realtime_turn_detection == RealtimeTurnDetection.SEMANTIC_VAD:
                add(
                    name,
                    _("This setting applies to server VAD only; semantic VAD uses eagerness."),
                )

    def _clean_turn_taking(self, add: Any) -> None:
        if self.min_endpointing_delay > self.max_endpointing_delay:
            add(
                "max_endpointing_delay",
                _("The maximum wait must be at least the minimum pause."),
            )
        if self.turn_detection == TurnDetection.AUDIO and not turn_detector_knows(self.language):
            add(
                "turn_detection",
                _("The turn-detector model does not know %(language)s; use voice activity only.")
                % {"language": self.language},
            )

    def _clean_avatar_and_preview(self, add: Any) -> None:
        if self.has_avatar and not self.avatar_id.strip():
            add("avatar_id", _("Enter the avatar id from Beyond Presence."))
        if not self.has_avatar and self.avatar_id.strip():
            add("avatar_provider", _("Choose the avatar provider for this avatar id."))
        if self.preview_mode == PreviewMode.LIVE and not self.has_avatar:
            add(
                "preview_mode",
                _("A live preview shows the avatar; choose an avatar or a poster preview."),
            )
        if self.preview_image and self.preview_image_url:
            add("preview_image_url", _("Upload a poster image or give its URL, not both."))
        if self.preview_video and self.preview_video_url:
            add("preview_video_url", _("Upload an idle clip or give its URL, not both."))
        if self.preview_mode == PreviewMode.POSTER and not (self.poster_url or self.idle_clip_url):
            add(
                "preview_mode",
                _("A poster preview needs a poster image or an idle clip (upload or URL)."),
            )

    def _clean_budget(self, add: Any) -> None:
        if self.daily_budget is None or self.daily_budget_unit != BudgetUnit.MONEY:
            return
        unpriced = persona_unpriced_models(self)
        if unpriced:
            add(
                "daily_budget",
                _(
                    "The price table has no price for %(models)s, so this persona's spending "
                    "cannot be counted. Ask your developer to add it to "
                    'VOICE_WIDGET["PRICES"], or set the budget in minutes.'
                )
                % {"models": ", ".join(unpriced)},
            )

    def snapshot(self) -> dict[str, Any]:
        """The persona's settings as plain JSON, stored on each conversation."""
        data: dict[str, Any] = {}
        for field in self._meta.concrete_fields:
            value = field.value_from_object(self)
            if isinstance(field, models.FileField):
                value = value.url if value else ""
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = str(value)  # JSON has no decimals; a string keeps the cents exact
            data[field.attname] = value
        return data


class ConversationStatus(models.TextChoices):
    CREATED = "created", _("Waiting for the agent")
    READY = "ready", _("Agent joined, waiting for start")
    ACTIVE = "active", _("Talking")
    ENDED = "ended", _("Ended")
    FAILED = "failed", _("Failed")


#: A conversation in one of these may still talk; it counts against a persona's limit.
#: The changes between statuses are made (and listed) in ``voice_widget.lifecycle``.
OPEN_STATUSES = (ConversationStatus.CREATED, ConversationStatus.READY, ConversationStatus.ACTIVE)


class EndReason(models.TextChoices):
    CLIENT_END = "client_end", _("Visitor ended it")
    AGENT_END = "agent_end", _("Agent ended it")
    PARTICIPANT_LEFT = "participant_left", _("Visitor left")
    MAX_DURATION = "max_duration", _("Reached the maximum length")
    IDLE_TIMEOUT = "idle_timeout", _("Nobody clicked start")
    ROOM_FINISHED = "room_finished", _("Room closed")
    ERROR = "error", _("Error")
    WORKER_SHUTDOWN = "worker_shutdown", _("Worker shut down")
    STAFF_END = "staff_end", _("Ended from the live page")


class FeedbackRating(models.TextChoices):
    UP = "up", _("Thumbs up")
    DOWN = "down", _("Thumbs down")


#: Nobody has joined the conversation's room yet: neither the visitor (LiveKit's
#: ``participant_joined`` webhook) nor the agent, which LiveKit dispatches only once the
#: visitor's token has created the room.
UNJOINED = models.Q(status=ConversationStatus.CREATED, visitor_joined_at__isnull=True)


class ConversationQuerySet(models.QuerySet):
    def open(self) -> ConversationQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def unjoined(self) -> ConversationQuerySet:
        """Open conversations whose room nobody has joined yet."""
        return self.filter(UNJOINED)

    def holding_places(
        self, *, joined_since: datetime, unjoined_since: datetime
    ) -> ConversationQuerySet:
        """Open conversations that still hold a place under a concurrency limit.

        One that was joined counts until it ends, or until it is older than any real one
        can be (``joined_since``: a crashed worker, a lost webhook). One that nobody joined
        counts only while its token could still be used (``unjoined_since``), so requests
        that never join LiveKit cannot keep a persona's places for long.
        """
        return self.open().filter(
            (~UNJOINED & models.Q(created_at__gte=joined_since))
            | (UNJOINED & models.Q(created_at__gte=unjoined_since))
        )

    def visitors(self) -> ConversationQuerySet:
        """Conversations of real visitors: editors' tries from admin left out (for lists,
        statistics and exports)."""
        return self.filter(is_test=False)

    def tests(self) -> ConversationQuerySet:
        """Editors' tries from the persona's admin page."""
        return self.filter(is_test=True)


class Conversation(models.Model):
    """One per token request: who talked to which persona, where, and how it ended."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    persona = models.ForeignKey(
        Persona, on_delete=models.PROTECT, related_name="conversations", verbose_name=_("persona")
    )
    persona_snapshot = models.JSONField(_("persona settings used"), default=dict, blank=True)
    # The snapshot is what the worker runs with; the version says which saved state of the
    # persona that was, for the history's diff. SET_NULL: pruning history keeps transcripts.
    persona_version = models.ForeignKey(
        "voice_widget.HistoricalPersona",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("persona version"),
    )
    is_test = models.BooleanField(
        _("editor's test"),
        default=False,
        db_index=True,
        help_text=_("Started by an editor from the persona's admin page (the user is the editor)."),
    )
    room_name = models.CharField(_("room"), max_length=100, unique=True)
    identity = models.CharField(_("participant identity"), max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="voice_conversations",
        verbose_name=_("user"),
    )
    page_url = models.URLField(_("page URL"), max_length=2000, blank=True)
    page_context = models.JSONField(
        _("page context (from the browser, unverified)"), default=dict, blank=True
    )
    signed_context = models.JSONField(
        _("page context (signed by the server)"), default=dict, blank=True
    )
    end_key_hash = models.CharField(max_length=64, blank=True, editable=False)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ConversationStatus,
        default=ConversationStatus.CREATED,
        db_index=True,
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    # A keyed hash of the visitor's IP address (never the address itself): how many
    # unjoined conversations one anonymous visitor holds is counted by it.
    visitor_key = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    visitor_joined_at = models.DateTimeField(_("visitor joined"), null=True, blank=True)
    # When the visitor's page last left the room (cleared when it rejoins): a reload may
    # resume the conversation within RESUME_WINDOW of this.
    visitor_left_at = models.DateTimeField(_("visitor left"), null=True, blank=True)
    agent_joined_at = models.DateTimeField(_("agent joined"), null=True, blank=True)
    started_at = models.DateTimeField(_("started talking"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(
        _("end reason"), max_length=30, choices=EndReason, blank=True, db_index=True
    )
    end_detail = models.CharField(_("end detail"), max_length=500, blank=True)
    usage = models.JSONField(_("usage"), default=dict, blank=True)
    content_purged_at = models.DateTimeField(
        _("transcript and page context deleted"),
        null=True,
        blank=True,
        help_text=_("Set by purge_voice_widget when the retention period removed them."),
    )

    consent_text = models.TextField(_("consent notice accepted"), blank=True)
    consent_version = models.CharField(_("consent version"), max_length=20, blank=True)
    consent_at = models.DateTimeField(_("consent given"), null=True, blank=True)
    feedback_rating = models.CharField(
        _("feedback"), max_length=10, choices=FeedbackRating, blank=True, db_index=True
    )
    feedback_comment = models.TextField(_("feedback comment"), blank=True)
    feedback_at = models.DateTimeField(_("feedback given"), null=True, blank=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return f"{self.persona_snapshot.get('name') or self.persona_id} · {self.room_name}"

    @cached_property
    def persona_settings(self) -> PersonaSettings:
        """The persona's settings this conversation runs with, from its snapshot, built once.

        A conversation created before snapshots existed has none: it runs with the persona as
        it is now, read once here and logged, never mixed with a snapshot.
        """
        if self.persona_snapshot:
            return PersonaSettings.from_snapshot(self.persona_snapshot)
        logger.warning(
            "conversation %s has no persona snapshot (created before snapshots): "
            "running with persona %s as it is now",
            self.pk,
            self.persona_id,
        )
        return PersonaSettings.from_persona(self.persona)

    @property
    def duration(self) -> timedelta | None:
        """Talking time: from the visitor's start (or creation) to the end."""
        if not self.ended_at:
            return None
        return self.ended_at - (self.started_at or self.created_at)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class TurnRole(models.TextChoices):
    USER = "user", _("Visitor")
    AGENT = "agent", _("Agent")
    SYSTEM = "system", _("System")


class Turn(models.Model):
    """One line of a conversation's transcript."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="turns", verbose_name=_("conversation")
    )
    sequence = models.PositiveIntegerField(_("#"))
    role = models.CharField(_("role"), max_length=10, choices=TurnRole)
    text = models.TextField(_("text"))
    interrupted = models.BooleanField(_("interrupted"), default=False)
    typed = models.BooleanField(
        _("typed"), default=False, help_text=_("The visitor typed this line instead of saying it.")
    )
    created_at = models.DateTimeField(_("time"), db_index=True)
    # How long the agent took to answer, per agent line, in seconds, from livekit-agents'
    # metrics (empty where a stage did not run, e.g. no speech-to-text for typed input).
    eou_delay = models.FloatField(
        _("end-of-utterance delay"),
        null=True,
        blank=True,
        help_text=_("Seconds from the visitor's end of speech to deciding that their turn ended."),
    )
    transcription_delay = models.FloatField(
        _("transcription delay"),
        null=True,
        blank=True,
        help_text=_("Seconds from the visitor's end of speech to the final transcript."),
    )
    llm_ttft = models.FloatField(
        _("LLM time to first token"),
        null=True,
        blank=True,
        help_text=_("Seconds from asking the language model to its first token."),
    )
    tts_ttfb = models.FloatField(
        _("time to first audio"),
        null=True,
        blank=True,
        help_text=_(
            "Seconds from the first text sent to speech synthesis to its first audio (with a "
            "realtime model: from the request to the model's first audio)."
        ),
    )
    e2e_latency = models.FloatField(
        _("end-to-end latency"),
        null=True,
        blank=True,
        help_text=_("Seconds from the visitor's end of speech to the agent's start of speech."),
    )

    #: The latency figures, in the order a reply goes through them.
    LATENCY_FIELDS = ("eou_delay", "transcription_delay", "llm_ttft", "tts_ttfb", "e2e_latency")

    class Meta:
        ordering = ["conversation", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "sequence"], name="voice_widget_turn_unique_sequence"
            )
        ]
        verbose_name = _("transcript line")
        verbose_name_plural = _("transcript")

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"


class WorkerHeartbeatQuerySet(models.QuerySet):
    @staticmethod
    def alive_condition(within: timedelta) -> models.Q:
        """The one rule of a live worker: not stopped, and seen within ``within``."""
        return models.Q(stopped_at__isnull=True, last_seen__gte=timezone.now() - within)

    def alive(self, agent_name: str, within: timedelta) -> WorkerHeartbeatQuerySet:
        return self.filter(self.alive_condition(within), agent_name=agent_name)

    def with_alive(self, within: timedelta) -> WorkerHeartbeatQuerySet:
        """Each heartbeat annotated ``is_alive`` by the same rule (for lists of all workers)."""
        return self.annotate(
            is_alive=models.ExpressionWrapper(
                self.alive_condition(within), output_field=models.BooleanField()
            )
        )


class WorkerHeartbeat(models.Model):
    """A worker process that is (or was) running, so the API can tell if any agent is up."""

    worker_id = models.CharField(_("worker id"), max_length=100, unique=True)
    agent_name = models.CharField(_("agent name"), max_length=100, db_index=True)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    started_at = models.DateTimeField(_("started"))
    last_seen = models.DateTimeField(_("last seen"), db_index=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    active_jobs = models.PositiveIntegerField(_("active conversations"), default=0)

    objects = WorkerHeartbeatQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen"]
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return f"{self.agent_name} on {self.host} (pid {self.pid})"
