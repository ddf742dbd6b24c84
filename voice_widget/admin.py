"""Admin for editors (personas) and reviewers (conversations and their transcripts)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import Context
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from . import history, providers, report
from .budget import spent_today
from .conf import vw_settings
from .costs import conversation_cost, format_amount
from .latency import PERIOD_DAYS, SHORT_LABELS, format_seconds, persona_latency
from .models import BudgetUnit, Conversation, Persona, Turn, WorkerHeartbeat
from .providers import REALTIME_VOICE_CATALOGUES, TTS_VOICES, VoiceCatalogue
from .templatetags.voice_widget import render_widget
from .tools import registry

#: How an editor starts a worker on a laptop (shown when none is running).
START_WORKER_COMMAND = "python manage.py run_voice_agent dev"

#: A cell starting with one of these is a formula to spreadsheets (OWASP's CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` for a CSV cell: a leading quote keeps a visitor's ``=HYPERLINK(…)`` a string."""
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def _https_urls(field: models.Field, **kwargs: Any) -> forms.Field | None:
    # Editors paste host names without a scheme; https is the right guess.
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


def provider_keys_help() -> str:
    """The voice pipeline's help: where its providers' keys come from, from the catalogue."""
    voice_stages = {providers.STT, providers.LLM, providers.TTS, providers.REALTIME}
    names = dict.fromkeys(
        name
        for provider in providers.PROVIDERS.values()
        if voice_stages & set(provider.stages)
        for name in provider.env_vars + provider.optional_env_vars
    )
    return str(
        _(
            "API keys never go here: the worker reads %(names)s from its environment; "
            "“manage.py check” names those missing."
        )
        % {"names": ", ".join(names)}
    )


class ProviderSuggestionInput(forms.TextInput):
    """A text field for any value, suggesting the chosen provider's options (a datalist).

    The field's ``list`` names the datalist of the provider chosen when the page was drawn;
    persona_form.js switches it when the provider changes. Without JavaScript it is a text
    field with the saved provider's suggestions.
    """

    #: The datalists' ids are ``<field id><list_kind><provider>``.
    list_kind = "_suggestions_"

    def __init__(self, provider_field: str, css_class: str = "") -> None:
        attrs = {"autocomplete": "off"} | ({"class": css_class} if css_class else {})
        super().__init__(attrs=attrs)
        self.provider_field = provider_field
        self.provider = ""
        self.language = ""

    def suggestions(self) -> dict[str, Iterable[tuple[str, str]]]:
        """Provider id → (value, label) options."""
        raise NotImplementedError

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> str:
        attrs = dict(attrs or {})
        base = attrs.get("id") or f"id_{name}"
        attrs["data-provider-field"] = self.provider_field
        attrs["data-list-kind"] = self.list_kind
        suggestions = self.suggestions()
        if self.provider in suggestions:
            attrs["list"] = f"{base}{self.list_kind}{self.provider}"
        datalists = format_html_join(
            "",
            '<datalist id="{}{}{}" data-provider="{}">{}</datalist>',
            (
                (base, self.list_kind, provider, provider, _options(options))
                for provider, options in suggestions.items()
            ),
        )
        return super().render(name, value, attrs, renderer) + datalists


def _options(options: Iterable[tuple[str, str]]) -> str:
    return format_html_join("", '<option value="{}">{}</option>', options)


class VoiceInput(ProviderSuggestionInput):
    """Any voice id, suggesting each provider's curated voices by name, the language's first."""

    list_kind = "_voices_"

    def __init__(self, catalogues: dict[str, VoiceCatalogue], provider_field: str) -> None:
        super().__init__(provider_field, css_class="vw-voice")
        self.catalogues = catalogues

    def suggestions(self) -> dict[str, Iterable[tuple[str, str]]]:
        return {
            provider: [(voice.id, voice.label) for voice in catalogue.for_language(self.language)]
            for provider, catalogue in self.catalogues.items()
        }


class ModelInput(ProviderSuggestionInput):
    """Any model name, suggesting the catalogue's models of the chosen provider."""

    list_kind = "_models_"

    def __init__(self, stage: str, provider_field: str) -> None:
        super().__init__(provider_field, css_class="vTextField")  # admin's text field look
        self.stage = stage

    def suggestions(self) -> dict[str, Iterable[tuple[str, str]]]:
        return {
            provider: [(model, model) for model in models]
            for provider, models in providers.model_suggestions(self.stage).items()
        }


#: Model fields and the stage whose catalogue models they suggest.
MODEL_FIELDS = {
    "stt_model": providers.STT,
    "llm_model": providers.LLM,
    "tts_model": providers.TTS,
    "realtime_model": providers.REALTIME,
    "stt_fallback_model": providers.STT,
    "llm_fallback_model": providers.LLM,
    "tts_fallback_model": providers.TTS,
}


def _voice_help(text: str, catalogues: dict[str, VoiceCatalogue]) -> str:
    unique = {catalogue.library_url: catalogue for catalogue in catalogues.values()}
    links = format_html_join(
        ", ",
        '<a href="{}" target="_blank" rel="noopener">{}</a>',
        ((url, catalogue.library_name) for url, catalogue in unique.items()),
    )
    return format_html("{} {} {}.", text, _("Find more voices:"), links)


class PersonaAdminForm(forms.ModelForm):
    enabled_tools = forms.MultipleChoiceField(
        label=_("Tools"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Functions the agent may call. Developers register more in code."),
    )

    class Meta:
        model = Persona
        fields = "__all__"  # noqa: DJ007 (the admin fieldsets choose what is shown)
        formfield_callback = _https_urls
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField"}),
            "greeting": forms.Textarea(attrs={"rows": 2}),
            "description": forms.Textarea(attrs={"rows": 2}),
            "stt_keyterms": forms.Textarea(attrs={"rows": 2}),
            "tts_instructions": forms.Textarea(attrs={"rows": 2}),
            "allowed_origins": forms.Textarea(attrs={"rows": 3}),
            "page_tools": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
            "accent_color": forms.TextInput(attrs={"type": "color"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Choices are read per form so tools registered after import still show up.
        self.fields["enabled_tools"].choices = registry.choices()
        language = str(self["language"].value() or "")
        for name, catalogues, provider_field, text in (
            (
                "tts_voice",
                TTS_VOICES,
                "tts_provider",
                _(
                    "Pick a voice from the list or type any voice id of the provider. Empty: "
                    "the provider's default voice for the persona's language."
                ),
            ),
            (
                "tts_fallback_voice",
                TTS_VOICES,
                "tts_fallback_provider",
                _("The fallback provider's voice, from the list or any id. Empty: its default."),
            ),
            (
                "realtime_voice",
                REALTIME_VOICE_CATALOGUES,
                "realtime_provider",
                _("Pick a voice or type its name. Empty: the model's default voice."),
            ),
        ):
            widget = VoiceInput(catalogues, provider_field)
            widget.provider = str(self[provider_field].value() or "")
            widget.language = language
            self.fields[name].widget = widget
            self.fields[name].help_text = _voice_help(text, catalogues)
        for name, stage in MODEL_FIELDS.items():
            provider_field = name.replace("_model", "_provider")
            widget = ModelInput(stage, provider_field)
            widget.provider = str(self[provider_field].value() or "")
            self.fields[name].widget = widget


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    form = PersonaAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # Few, narrow columns so the list fits a laptop beside the filters; language, avatar and
    # preview are filters.
    list_display = ["name", "slug", "is_active", "pipeline_summary", "avatar_summary", "updated_at"]
    list_filter = ["is_active", "pipeline_kind", "language", "avatar_provider", "preview_mode"]
    search_fields = ["name", "slug", "description", "instructions"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "embed_snippet",
        "budget_today",
        "latency_report",
        "created_at",
        "updated_at",
    ]
    actions = ["duplicate"]
    save_on_top = True

    class Media:
        css = {"all": ["voice_widget/admin/persona_form.css"]}
        js = ["voice_widget/admin/persona_form.js"]

    fieldsets = [
        (
            _("Identity"),
            {
                "fields": [
                    "name",
                    "slug",
                    "is_active",
                    "description",
                    "embed_snippet",
                    "latency_report",
                ]
            },
        ),
        (
            _("Conversation"),
            {
                "fields": [
                    "instructions",
                    "greeting",
                    "greeting_mode",
                    "start_mode",
                    "language",
                    "closing_message",
                ]
            },
        ),
        (
            _("Voice pipeline"),
            {
                "description": lazy(provider_keys_help, str)(),
                "fields": [
                    "pipeline_kind",
                    ("stt_provider", "stt_model"),
                    "stt_keyterms",
                    ("llm_provider", "llm_model"),
                    "llm_temperature",
                    "llm_base_url",
                    ("azure_endpoint", "azure_deployment", "azure_api_version"),
                    ("tts_provider", "tts_model"),
                    ("tts_voice", "tts_speed"),
                    "tts_instructions",
                    ("realtime_provider", "realtime_model", "realtime_voice"),
                    "realtime_use_tts",
                    "realtime_turn_detection",
                    (
                        "realtime_vad_threshold",
                        "realtime_prefix_padding_ms",
                        "realtime_silence_duration_ms",
                    ),
                    "realtime_eagerness",
                ],
            },
        ),
        (
            _("Fallbacks"),
            {
                "classes": ["collapse"],
                "description": _(
                    "Used when the primary provider of a stage fails, so an outage does not "
                    "end the conversation. With a realtime model, only the text-to-speech "
                    "fallback applies (when the text-to-speech voice speaks)."
                ),
                "fields": [
                    ("stt_fallback_provider", "stt_fallback_model"),
                    ("llm_fallback_provider", "llm_fallback_model"),
                    ("tts_fallback_provider", "tts_fallback_model", "tts_fallback_voice"),
                ],
            },
        ),
        (
            _("Turn-taking"),
            {
                "classes": ["collapse"],
                "description": _(
                    "When the agent answers and how the visitor may interrupt. The defaults "
                    "suit most sites."
                ),
                "fields": [
                    "turn_detection",
                    "vad_threshold",
                    ("min_endpointing_delay", "max_endpointing_delay"),
                    "allow_interruptions",
                    ("min_interruption_duration", "min_interruption_words"),
                    "false_interruption_timeout",
                    "preemptive_generation",
                    "noise_cancellation",
                ],
            },
        ),
        (
            _("Avatar & preview"),
            {
                "fields": [
                    ("avatar_provider", "avatar_id"),
                    "preview_mode",
                    ("preview_image", "preview_image_url"),
                    ("preview_video", "preview_video_url"),
                ]
            },
        ),
        (
            _("Widget look"),
            {
                "fields": [
                    ("theme", "position"),
                    "accent_color",
                    "button_label",
                    "welcome_text",
                ]
            },
        ),
        (
            _("Visitors"),
            {
                "classes": ["collapse"],
                "description": _(
                    "How visitors may talk to the agent, whether they are asked for feedback "
                    "at the end, and a notice they accept before the first start."
                ),
                "fields": [
                    "interaction_mode",
                    "feedback_enabled",
                    "consent_text",
                    "consent_url",
                ],
            },
        ),
        (
            _("Access & limits"),
            {
                "classes": ["collapse"],
                "fields": [
                    "allowed_origins",
                    "login_required",
                    "max_duration_seconds",
                    "preview_idle_seconds",
                    "max_concurrent_conversations",
                    ("daily_budget", "daily_budget_unit"),
                    "budget_today",
                ],
            },
        ),
        (_("Tools"), {"classes": ["collapse"], "fields": ["enabled_tools", "page_tools"]}),
        (
            _("Created and last saved"),
            {"classes": ["collapse"], "fields": ["created_at", "updated_at"]},
        ),
    ]

    def save_model(self, request: HttpRequest, obj: Persona, form: Any, change: bool) -> None:
        # The version this save writes records who made it.
        obj._history_user = request.user
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/latency/",
                self.admin_site.admin_view(self.latency_view),
                name="voice_widget_persona_latency",
            ),
            path(
                "<path:object_id>/versions/<int:version_id>/",
                self.admin_site.admin_view(self.version_view),
                name="voice_widget_persona_version",
            ),
            path(
                "<path:object_id>/versions/<int:version_id>/restore/",
                self.admin_site.admin_view(require_POST(self.restore_view)),
                name="voice_widget_persona_restore",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        persona = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if persona is not None:
            extra_context.update(
                trial=self._trial_context(request, persona),
                versions=history.versions(persona),
                version_count=persona.history.count(),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        # persona_form.js shows a provider's own fields (key terms, Azure…) as the catalogue says.
        context["provider_fields"] = providers.provider_fields()
        return super().render_change_form(request, context, *args, **kwargs)

    @staticmethod
    def _trial_context(request: HttpRequest, persona: Persona) -> dict[str, Any]:
        """What "Try it here" shows: the widget for the saved persona (its sessions marked
        as this editor's tests), or why it cannot run."""
        workers = WorkerHeartbeat.objects.alive(
            vw_settings.AGENT_NAME, within=timedelta(seconds=vw_settings.HEARTBEAT_TIMEOUT)
        ).count()
        widget = ""
        if persona.is_active and vw_settings.livekit_configured:
            widget = render_widget(
                Context({"request": request}),
                persona.slug,
                position="inline",
                trial_user=request.user,
            )
        return {
            "widget": widget,
            "is_active": persona.is_active,
            "livekit_configured": vw_settings.livekit_configured,
            "workers": workers,
            "agent_name": vw_settings.AGENT_NAME,
            "start_command": START_WORKER_COMMAND,
            "tests_url": reverse("admin:voice_widget_conversation_changelist")
            + f"?audience=tests&persona__id__exact={persona.pk}",
        }

    def _version_or_404(self, request: HttpRequest, object_id: str, version_id: int) -> Any:
        persona = self.get_object(request, unquote(object_id))
        if persona is None:
            raise Http404(_("No such persona."))
        record = persona.history.filter(history_id=version_id).first()
        if record is None:
            raise Http404(_("This persona has no such version."))
        return persona, record

    def version_view(self, request: HttpRequest, object_id: str, version_id: int) -> HttpResponse:
        """One saved version in full, and how it differs from the persona now."""
        persona, record = self._version_or_404(request, object_id, version_id)
        if not self.has_view_or_change_permission(request, persona):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("%(name)s, version %(number)d")
            % {"name": persona.name, "number": history.version_number(record)},
            "persona": persona,
            "record": record,
            "number": history.version_number(record),
            "fields": history.version_fields(record),
            "changes_since": history.changes_between(record, persona),
            "can_restore": self.has_change_permission(request, persona),
        }
        return TemplateResponse(request, "admin/voice_widget/persona/version.html", context)

    def restore_view(self, request: HttpRequest, object_id: str, version_id: int) -> HttpResponse:
        """Save the persona as it was in an old version (a new version records it)."""
        persona, record = self._version_or_404(request, object_id, version_id)
        if not self.has_change_permission(request, persona):
            raise PermissionDenied
        change_url = reverse("admin:voice_widget_persona_change", args=[persona.pk])
        try:
            with transaction.atomic():
                history.restore(persona, record, user=request.user)
        except ValidationError as exc:
            self.message_user(
                request,
                _("Version %(number)d cannot be restored: %(errors)s")
                % {"number": history.version_number(record), "errors": " ".join(exc.messages)},
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)
        self.message_user(
            request,
            _("Restored version %(number)d as a new version.")
            % {"number": history.version_number(record)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url + "#versions")

    def latency_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Median and 95th percentile of the persona's reply latency over 1, 7 or 30 days."""
        persona = self.get_object(request, object_id)
        if persona is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, persona):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", PERIOD_DAYS[0]))
        except ValueError:
            days = PERIOD_DAYS[0]
        if days not in PERIOD_DAYS:
            days = PERIOD_DAYS[0]
        figures = persona_latency(persona, days=days)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": persona,
            "title": _("Latency of %(persona)s") % {"persona": persona.name},
            "days": days,
            "periods": sorted(PERIOD_DAYS),
            "rows": [
                (figure, format_seconds(figure.median), format_seconds(figure.p95))
                for figure in figures
            ],
        }
        return TemplateResponse(request, "admin/voice_widget/persona/latency.html", context)

    @admin.display(description=_("Latency"))
    def latency_report(self, obj: Persona) -> str:
        if not obj.pk:
            return "–"
        url = reverse("admin:voice_widget_persona_latency", args=[obj.pk])
        return format_html(
            '<a href="{}">{}</a>', url, _("Median and 95th percentile of reply latency")
        )

    @admin.display(description=_("Pipeline"))
    def pipeline_summary(self, obj: Persona) -> str:
        if obj.is_realtime:
            return f"{obj.get_realtime_provider_display()} · {obj.realtime_model}"
        return f"{obj.stt_model} → {obj.llm_model} → {obj.tts_model}"

    @admin.display(description=_("Avatar"), ordering="avatar_provider")
    def avatar_summary(self, obj: Persona) -> str:
        return obj.get_avatar_provider_display() if obj.has_avatar else "–"

    @admin.display(description=_("Embed snippet"))
    def embed_snippet(self, obj: Persona) -> str:
        if not obj.pk:
            return _("Save the persona to get its snippet.")
        return format_html(
            '<code style="user-select:all">{}</code><br><span class="help">{}</span>',
            obj.embed_snippet,
            _("Paste this into any template of your site."),
        )

    @admin.display(description=_("Used today"))
    def budget_today(self, obj: Persona) -> str:
        if not obj.pk:
            return "–"
        unit = obj.daily_budget_unit
        spent = spent_today(obj)
        amount = (
            f"{spent.quantize(Decimal('0.1'))} min"
            if unit == BudgetUnit.MINUTES
            else f"{format_amount(spent)} {vw_settings.CURRENCY}"
        )
        report_url = reverse("admin:voice_widget_conversation_report") + f"?persona={obj.pk}"
        return format_html(
            '{} <a href="{}">{}</a><br><span class="help">{}</span>',
            amount,
            report_url,
            _("Report"),
            _(
                "Since midnight (%(zone)s): the estimated cost of the conversations that "
                "have ended, or the minutes talked so far."
            )
            % {"zone": timezone.get_default_timezone_name()},
        )

    @admin.action(description=_("Duplicate selected personas (copies start inactive)"))
    def duplicate(self, request: HttpRequest, queryset: QuerySet[Persona]) -> None:
        created = []
        for persona in queryset:
            copy = Persona.objects.get(pk=persona.pk)
            copy.pk = None
            copy._state.adding = True
            copy.name = f"{persona.name} (copy)"[:100]
            copy.slug = _unique_slug(persona.slug)
            copy.is_active = False
            copy._history_user = request.user
            copy._change_reason = _("Duplicated from %(slug)s") % {"slug": persona.slug}
            copy.save()
            created.append(copy.name)
        self.message_user(
            request,
            ngettext(
                "Created %(count)d copy: %(names)s. It is inactive until you activate it.",
                "Created %(count)d copies: %(names)s. They are inactive until you activate them.",
                len(created),
            )
            % {"count": len(created), "names": ", ".join(created)},
            messages.SUCCESS,
        )


def _unique_slug(base: str) -> str:
    stem = slugify(f"{base}-copy")[:54]
    slug, n = stem, 2
    while Persona.objects.filter(slug=slug).exists():
        slug = f"{stem}-{n}"
        n += 1
    return slug


class TurnInline(admin.TabularInline):
    model = Turn
    fields = ["sequence", "created_at", "role", "text", "typed", "interrupted", "latency"]
    readonly_fields = fields
    ordering = ["sequence"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("latency"))
    def latency(self, obj: Turn) -> str:
        """How long the agent took to answer, stage by stage (agent lines)."""
        figures = [
            (Turn._meta.get_field(name).help_text, SHORT_LABELS[name], value)
            for name in Turn.LATENCY_FIELDS
            if (value := getattr(obj, name)) is not None
        ]
        return format_html_join(
            " · ",
            '<span title="{}">{} {}</span>',
            ((help_text, label, format_seconds(value)) for help_text, label, value in figures),
        )


class DurationFilter(admin.SimpleListFilter):
    title = _("duration")
    parameter_name = "duration"
    BUCKETS = {
        "lt1": (None, timedelta(minutes=1)),
        "1to5": (timedelta(minutes=1), timedelta(minutes=5)),
        "gt5": (timedelta(minutes=5), None),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("lt1", _("under 1 minute")),
            ("1to5", _("1 to 5 minutes")),
            ("gt5", _("over 5 minutes")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        bounds = self.BUCKETS.get(self.value() or "")
        if not bounds:
            return queryset
        low, high = bounds
        if low is not None:
            queryset = queryset.filter(duration_value__gte=low)
        if high is not None:
            queryset = queryset.filter(duration_value__lt=high)
        return queryset


class AudienceFilter(admin.SimpleListFilter):
    """Visitors' conversations by default; editors' tries from admin only when asked for."""

    title = _("started by")
    parameter_name = "audience"
    VISITORS, TESTS, ALL = "visitors", "tests", "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (self.VISITORS, _("Visitors")),
            (self.TESTS, _("Editors' tests (from admin)")),
            (self.ALL, _("Everyone")),
        ]

    def value(self) -> str:
        return super().value() or self.VISITORS

    def choices(self, changelist: Any) -> Iterable[dict[str, Any]]:
        # No "All" entry pointing at the default: "Everyone" is the explicit one.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == self.TESTS:
            return queryset.filter(is_test=True)
        if self.value() == self.ALL:
            return queryset
        return queryset.filter(is_test=False)


@dataclass(frozen=True)
class ExportColumn:
    """One column of the transcript export: its name and how to read it. The CSV has the
    conversation's columns, then the turn's, one row per turn; the JSON has one object per
    conversation with its turns in a list. Adding a column is one line in a list below."""

    name: str
    value: Callable[[Any], Any]


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 3)


#: Per conversation (a host project or another feature may append to this list).
CONVERSATION_EXPORT_COLUMNS: list[ExportColumn] = [
    ExportColumn("conversation", lambda c: str(c.pk)),
    ExportColumn("persona", lambda c: c.persona.slug),
    ExportColumn("persona_version", lambda c: c.persona_version_id),
    ExportColumn("is_test", lambda c: c.is_test),
    ExportColumn("status", lambda c: c.status),
    ExportColumn("created_at", lambda c: c.created_at),
    ExportColumn("started_at", lambda c: c.started_at),
    ExportColumn("ended_at", lambda c: c.ended_at),
    ExportColumn("duration_seconds", lambda c: _seconds(c.duration)),
    ExportColumn("end_reason", lambda c: c.end_reason),
    ExportColumn("end_detail", lambda c: c.end_detail),
    ExportColumn("page_url", lambda c: c.page_url),
    ExportColumn("usage", lambda c: c.usage),
    ExportColumn("estimated_cost", lambda c: _estimated_cost(c)),
    ExportColumn("feedback", lambda c: c.feedback_rating),
    ExportColumn("feedback_comment", lambda c: c.feedback_comment),
    ExportColumn("feedback_at", lambda c: c.feedback_at),
    ExportColumn("consent_text", lambda c: c.consent_text),
    ExportColumn("consent_version", lambda c: c.consent_version),
    ExportColumn("consent_at", lambda c: c.consent_at),
    ExportColumn("currency", lambda c: vw_settings.CURRENCY),
]

#: Per transcript line.
TURN_EXPORT_COLUMNS: list[ExportColumn] = [
    ExportColumn("sequence", lambda t: t.sequence),
    ExportColumn("time", lambda t: t.created_at),
    ExportColumn("role", lambda t: t.role),
    ExportColumn("text", lambda t: t.text),
    ExportColumn("interrupted", lambda t: t.interrupted),
    ExportColumn("typed", lambda t: t.typed),
    # The worker's figures for an agent line, in seconds (None where a stage did not run).
    ExportColumn("latency", lambda t: {name: getattr(t, name) for name in Turn.LATENCY_FIELDS}),
]


def _estimated_cost(conversation: Conversation) -> str | None:
    """The cost estimate as a decimal string, None when nothing was recorded or priced."""
    estimate = conversation_cost(conversation)
    if not estimate.parts and not estimate.unpriced:
        return None
    return format_amount(estimate.total) + ("" if estimate.complete else "+")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder)
    return spreadsheet_safe(str(value))


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "persona",
        "status",
        "end_reason",
        "duration_display",
        "turn_count",
        "feedback_rating",
        "cost_display",
        "user",
        "is_test",
    ]
    list_filter = [
        AudienceFilter,
        "status",
        "end_reason",
        "persona",
        DurationFilter,
        "feedback_rating",
        ("consent_at", admin.EmptyFieldListFilter),
        "created_at",
    ]
    search_fields = ["=id", "room_name", "identity", "page_url", "turns__text", "feedback_comment"]
    date_hierarchy = "created_at"
    inlines = [TurnInline]
    actions = ["export_csv", "export_json", "erase_visitors"]
    list_select_related = ["persona", "user"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "persona",
                    "persona_version_link",
                    "is_test",
                    "status",
                    "end_reason",
                    "end_detail",
                ]
            },
        ),
        (
            _("When"),
            {
                "fields": [
                    "created_at",
                    "visitor_joined_at",
                    "agent_joined_at",
                    "started_at",
                    "ended_at",
                ]
            },
        ),
        (
            _("Who and where"),
            {"fields": ["user", "identity", "room_name", "page_url"]},
        ),
        (
            _("Feedback and consent"),
            {
                "fields": [
                    "feedback_rating",
                    "feedback_comment",
                    "feedback_at",
                    "consent_text",
                    "consent_version",
                    "consent_at",
                ]
            },
        ),
        (
            _("Context and usage"),
            {
                "fields": [
                    "signed_context",
                    "page_context",
                    "content_purged_at",
                    "usage",
                    "cost_breakdown",
                    "persona_snapshot",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [
            *(f.name for f in Conversation._meta.fields if f.name != "end_key_hash"),
            "persona_version_link",
            "cost_breakdown",
        ]

    @admin.display(description=_("persona version"))
    def persona_version_link(self, obj: Conversation) -> str:
        """The saved version of the persona this conversation ran with, on its own page."""
        if obj.persona_version_id is None:
            return _("Not recorded (before versions were kept, or the version was deleted).")
        record = obj.persona_version
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:voice_widget_persona_version", args=[obj.persona_id, record.history_id]),
            _("Version %(number)d of %(date)s")
            % {
                "number": history.version_number(record),
                "date": timezone.localtime(record.history_date).strftime("%Y-%m-%d %H:%M"),
            },
        )

    def get_urls(self) -> list:
        from .live_views import live_urls  # the live conversations pages

        report_view = self.admin_site.admin_view(self.report_view)
        return [
            path("report/", report_view, name="voice_widget_conversation_report"),
            *live_urls(self.admin_site),
            *super().get_urls(),
        ]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """Per persona and per day: conversations, durations, end reasons, cost, latency."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", report.DEFAULT_PERIOD))
        except ValueError:
            days = report.DEFAULT_PERIOD
        if days not in report.PERIODS:
            days = report.DEFAULT_PERIOD
        persona_id = request.GET.get("persona", "")
        persona = Persona.objects.filter(pk=persona_id).first() if persona_id.isdigit() else None
        currency = vw_settings.CURRENCY
        latency = [(f.name, str(f.verbose_name)) for f in report.latency_fields()]
        sections = [
            {
                "report": item,
                "charts": report.charts_for(item, currency),
                "rows": [_report_row(row, latency) for row in reversed(item.days)],
                "total": _report_row(item.total, latency),
            }
            for item in report.build_report(days, persona)
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Conversation report"),
            "sections": sections,
            "periods": report.PERIODS,
            "days": days,
            "personas": Persona.objects.order_by("name").only("pk", "name"),
            "persona": persona,
            "currency": currency,
            "latency_labels": [label for _name, label in latency],
            "time_zone": timezone.get_default_timezone_name(),
        }
        return TemplateResponse(request, "admin/voice_widget/conversation/report.html", context)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                duration_value=ExpressionWrapper(
                    F("ended_at") - Coalesce("started_at", "created_at"),
                    output_field=DurationField(),
                ),
                turn_total=Count("turns", distinct=True),
            )
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("duration"), ordering="duration_value")
    def duration_display(self, obj: Conversation) -> str:
        value = obj.duration
        if value is None:
            return "–" if obj.is_open else ""
        seconds = int(value.total_seconds())
        return f"{seconds // 60}:{seconds % 60:02d}"

    @admin.display(description=_("cost"))
    def cost_display(self, obj: Conversation) -> str:
        estimate = conversation_cost(obj)
        if not estimate.parts and not estimate.unpriced:
            return "–"
        text = format_amount(estimate.total)
        return text if estimate.complete else f"{text}+"

    @admin.display(description=_("estimated cost"))
    def cost_breakdown(self, obj: Conversation) -> str:
        estimate = conversation_cost(obj)
        if not estimate.parts and not estimate.unpriced:
            return _("Nothing recorded yet (the worker writes the usage when it ends).")
        currency = vw_settings.CURRENCY
        rows = format_html_join(
            "",
            "<li>{}: {} {}</li>",
            ((label, format_amount(a), currency) for label, a in estimate.parts),
        )
        missing = format_html_join(
            "", "<li>{}: {}</li>", ((label, _("no price")) for label in estimate.unpriced)
        )
        return format_html(
            '<strong>{} {}</strong><ul>{}{}</ul><span class="help">{}</span>',
            format_amount(estimate.total),
            currency,
            rows,
            missing,
            _(
                "An estimate from the recorded usage and the price table "
                '(VOICE_WIDGET["PRICES"] over the list prices).'
            ),
        )

    @admin.display(description=_("lines"), ordering="turn_total")
    def turn_count(self, obj: Conversation) -> int:
        return getattr(obj, "turn_total", None) or obj.turns.count()

    @admin.action(description=_("Export transcripts as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{_export_name()}.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [column.name for column in (*CONVERSATION_EXPORT_COLUMNS, *TURN_EXPORT_COLUMNS)]
        )
        for conversation in _with_turns(queryset):
            head = [_csv_cell(c.value(conversation)) for c in CONVERSATION_EXPORT_COLUMNS]
            turns = list(conversation.turns.all())
            for turn in turns:
                writer.writerow(head + [_csv_cell(c.value(turn)) for c in TURN_EXPORT_COLUMNS])
            if not turns:  # a conversation nobody spoke in still has its ending to evaluate
                writer.writerow(head + [""] * len(TURN_EXPORT_COLUMNS))
        return response

    @admin.action(description=_("Export transcripts as JSON"))
    def export_json(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse:
        data = [
            {
                **{c.name: c.value(conversation) for c in CONVERSATION_EXPORT_COLUMNS},
                "turns": [
                    {c.name: c.value(turn) for c in TURN_EXPORT_COLUMNS}
                    for turn in conversation.turns.all()
                ],
            }
            for conversation in _with_turns(queryset)
        ]
        response = HttpResponse(
            json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{_export_name()}.json"'
        return response

    @admin.action(
        description=_("Erase every conversation of the selected conversations' visitors"),
        permissions=["delete"],
    )
    def erase_visitors(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> HttpResponse | None:
        """A data-protection request: delete all conversations (and transcripts) of the
        logged-in visitors behind the selected ones, after a confirmation page."""
        user_ids = set(queryset.exclude(user=None).values_list("user_id", flat=True))
        if not user_ids:
            self.message_user(
                request,
                _(
                    "None of the selected conversations belongs to a logged-in visitor; "
                    "anonymous conversations are found by their id and deleted one by one."
                ),
                messages.WARNING,
            )
            return None
        theirs = Conversation.objects.filter(user_id__in=user_ids)
        if request.POST.get("confirmed") != "yes":
            User = Conversation._meta.get_field("user").related_model
            people = [
                (user, theirs.filter(user=user).count())
                for user in User._default_manager.filter(pk__in=user_ids).order_by("pk")
            ]
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Erase these visitors' conversations?"),
                "people": people,
                "total": theirs.count(),
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "action": "erase_visitors",
            }
            return TemplateResponse(
                request, "admin/voice_widget/conversation/erase_confirmation.html", context
            )
        with transaction.atomic():
            turns = Turn.objects.filter(conversation__in=theirs).count()
            count, _unused = theirs.delete()
            conversations = count - turns
        self.message_user(
            request,
            ngettext(
                "Erased %(count)d conversation (%(turns)d transcript lines) of %(people)d "
                "visitor(s).",
                "Erased %(count)d conversations (%(turns)d transcript lines) of %(people)d "
                "visitor(s).",
                conversations,
            )
            % {"count": conversations, "turns": turns, "people": len(user_ids)},
            messages.SUCCESS,
        )
        return None


def _report_row(row: report.DayStats, latency: list[tuple[str, str]]) -> dict[str, Any]:
    """One day (or the period's total) as the report template shows it."""
    medians = row.latency_medians([name for name, _label in latency])
    return {
        "day": row.day,
        "conversations": row.conversations,
        "total": report.format_duration(row.talk_seconds if row.timed else None),
        "average": report.format_duration(row.average_seconds),
        "end_reasons": report.end_reason_summary(row.end_reasons),
        "cost": format_amount(row.cost) if row.conversations else "–",
        "unpriced": row.unpriced,
        "latency": [
            (label, "–" if value is None else f"{value:.2f} s")
            for (_name, label), value in zip(latency, medians, strict=True)
        ],
    }


def _with_turns(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return queryset.select_related("persona").prefetch_related("turns").order_by("created_at")


def _export_name() -> str:
    return f"transcripts-{timezone.now():%Y%m%d-%H%M%S}"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["agent_name", "host", "pid", "active_jobs", "started_at", "last_seen", "alive"]
    list_filter = ["agent_name", "host"]
    search_fields = ["agent_name", "host", "worker_id"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in WorkerHeartbeat._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> Any:
        within = timedelta(seconds=vw_settings.HEARTBEAT_TIMEOUT)
        return super().get_queryset(request).with_alive(within)

    @admin.display(boolean=True, description=_("alive"), ordering="is_alive")
    def alive(self, obj: WorkerHeartbeat) -> bool:
        return obj.is_alive
