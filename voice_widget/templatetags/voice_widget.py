"""``{% voice_widget "slug" %}``: the ``<voice-widget>`` element for a persona, in a template.

The tag renders the element with the API's URLs and the persona's public look as attributes
(so the widget needs no extra request to draw itself), signs the server-side facts given as
``context=`` (see ``voice_widget.signing``), and adds the module script once per page. There
is no inline script, so a strict Content-Security-Policy works. An unknown or inactive persona
renders nothing and logs a warning: a page never fails because of the widget.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django import template
from django.middleware.csrf import get_token
from django.template.base import FilterExpression, token_kwargs
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse

from ..conf import vw_settings
from ..models import Persona, PreviewMode
from ..models import Position as WidgetPosition
from ..models import Theme as WidgetTheme
from ..signing import sign_context
from ..trials import trial_endpoint

logger = logging.getLogger("voice_widget.templatetags")
register = template.Library()

#: Marks a request (or, without one, a render) that already has the widget's script tag.
SCRIPT_FLAG = "_voice_widget_script_emitted"


def _first_time(context: template.Context, flag: str) -> bool:
    """True the first time a page asks about ``flag``: marked on the request, or without
    one on the render context, which lives for one render including extends and includes."""
    request = context.get("request")
    if request is not None:
        if getattr(request, flag, False):
            return False
        setattr(request, flag, True)
        return True
    state = context.render_context.dicts[0]
    if state.get(flag):
        return False
    state[flag] = True
    return True


def _script_needed(context: template.Context) -> bool:
    """The script tag is emitted once per page."""
    return _first_time(context, SCRIPT_FLAG)


#: Where the build puts the widget's chunks (labels other than English, layouts, livekit-client).
CHUNKS_DIR = Path(__file__).resolve().parent.parent / "static" / "voice_widget" / "chunks"


@functools.cache
def _chunk(name: str) -> str | None:
    """The file name of the built chunk ``name`` (e.g. ``de`` → ``de-4KX2.js``)."""
    found = [path.name for path in CHUNKS_DIR.glob(f"{name}-*.js")]
    return next((file for file in sorted(found) if re.fullmatch(rf"{name}-\w+\.js", file)), None)


def _chunk_url(name: str) -> str:
    # Next to the script's URL (hashed or not): where the script's own import() looks.
    return f"{static('voice_widget/voice-widget.js').rsplit('/', 1)[0]}/chunks/{name}"


def _preload_urls(context: template.Context, language: str, position: str) -> list[str]:
    """``modulepreload`` URLs, each once per page, for what the widget needs before it can
    draw itself, so they load alongside the script instead of after it: its labels in
    ``language`` (English is in the script itself), and a full page's layout."""
    wanted = []
    primary = (language or "").replace("_", "-").split("-")[0].lower()
    if primary.isalpha() and primary != "en":
        wanted.append(primary)
    if position == WidgetPosition.FULLPAGE:
        wanted.append("layout")
    return [
        _chunk_url(chunk)
        for name in wanted
        if (chunk := _chunk(name)) is not None and _first_time(context, f"{SCRIPT_FLAG}_{name}")
    ]


def _choice(value: Any, choices: type, name: str, slug: str, default: str) -> str:
    if value in (None, ""):
        return default
    if value in choices.values:
        return str(value)
    logger.warning(
        "voice_widget tag for persona %s: %s=%r is not one of %s; using %r.",
        slug,
        name,
        value,
        ", ".join(choices.values),
        default,
    )
    return default


#: The tag's optional arguments (``context`` is the dict of server-side facts).
TAG_ARGUMENTS = frozenset({"context", "position", "preview", "theme", "agent_timeout", "poster"})


@register.tag(name="voice_widget")
def do_voice_widget(parser: template.base.Parser, token: template.base.Token) -> VoiceWidgetNode:
    """``{% voice_widget "slug" context=facts position="inline" preview="poster" %}``."""
    bits = token.split_contents()
    tag_name, bits = bits[0], bits[1:]
    if not bits or "=" in bits[0]:
        raise template.TemplateSyntaxError(
            f'{tag_name} needs the persona\'s slug first, e.g. {{% {tag_name} "paula" %}}.'
        )
    slug = parser.compile_filter(bits.pop(0))
    arguments = token_kwargs(bits, parser, support_legacy=False)
    if bits:
        raise template.TemplateSyntaxError(
            f"{tag_name} takes the slug and then name=value arguments; cannot read {bits[0]!r}."
        )
    unknown = set(arguments) - TAG_ARGUMENTS
    if unknown:
        raise template.TemplateSyntaxError(
            f"{tag_name} has no argument {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(TAG_ARGUMENTS))}."
        )
    return VoiceWidgetNode(slug, arguments)


class VoiceWidgetNode(template.Node):
    def __init__(self, slug: FilterExpression, arguments: dict[str, FilterExpression]) -> None:
        self.slug = slug
        self.arguments = arguments

    def render(self, context: template.Context) -> str:
        values = {name: value.resolve(context) for name, value in self.arguments.items()}
        facts = values.pop("context", None)
        return render_widget(context, str(self.slug.resolve(context) or ""), facts=facts, **values)


def render_widget(
    context: template.Context,
    slug: str,
    *,
    facts: Mapping[str, Any] | None = None,
    position: str | None = None,
    preview: str | None = None,
    theme: str | None = None,
    agent_timeout: int | float | str | None = None,
    poster: str | None = None,
    trial_user: Any = None,
) -> str:
    """The element's HTML (and the script tag, the first time on a page), or "" when the
    persona is unknown or inactive or the API's URLs are not installed. ``poster`` (a URL,
    e.g. from ``{% static %}``) is shown instead of the persona's poster image, as a poster
    preview unless the persona or ``preview`` asks for another.

    ``trial_user`` (a staff user, from the persona's admin page): the widget's session
    requests carry a signed proof of that, so its conversations are recorded as that
    editor's tests.
    """
    persona = Persona.objects.active().filter(slug=slug).first()
    if persona is None:
        logger.warning(
            "voice_widget tag: no active persona %r; the widget is not shown.", str(slug)
        )
        return ""
    urls = _api_urls(persona, trial_user)
    if urls is None:
        return ""
    sessions_url, health_url = urls
    preview_mode = _preview_mode(persona, preview, poster)
    position = _choice(position, WidgetPosition, "position", persona.slug, persona.position)
    attributes = {
        "persona": persona.slug,
        "agent-name": persona.name,
        "endpoint": sessions_url,
        "health-endpoint": health_url,
        "preview": preview_mode,
        "poster": str(poster or "") or persona.poster_url,
        "idle-clip": persona.idle_clip_url,
        "position": position,
        "theme": _choice(theme, WidgetTheme, "theme", persona.slug, persona.theme),
        "accent": persona.accent_color,
        "label": persona.button_label,
        "welcome": persona.welcome_text,
        "lang": persona.language,
        "mode": persona.interaction_mode,
        "feedback": "on" if persona.feedback_enabled else "",
        "consent-text": persona.consent_text.strip(),
        "consent-url": persona.consent_url,
        "consent-version": persona.consent_version,
        "consent-max-age": str(vw_settings.CONSENT_MAX_AGE) if persona.consent_version else "",
        "signed-context": _signed_context(context, persona, facts),
        "agent-timeout": _agent_timeout(persona, agent_timeout),
        "csrf-token": _csrf_token_for_logged_in_visitor(context.get("request")),
    }
    return render_to_string(
        "voice_widget/widget.html",
        {
            "attributes": [(name, value) for name, value in attributes.items() if value],
            "include_script": _script_needed(context),
            "preloads": _preload_urls(context, persona.language, position),
        },
    )


def _api_urls(persona: Persona, trial_user: Any) -> tuple[str, str] | None:
    """The session and health endpoints the widget calls, or None (logged) when the app's
    URLs are not installed. An editor's trial gets a session URL carrying its signed proof."""
    try:
        sessions_url = reverse("voice_widget:sessions")
        health_url = reverse("voice_widget:health")
    except NoReverseMatch:
        logger.warning(
            "voice_widget tag for persona %s: the voice_widget URLs are not installed "
            '(add path("voice-widget/", include("voice_widget.urls"))); the widget is not shown.',
            persona.slug,
        )
        return None
    if trial_user is not None:
        sessions_url = trial_endpoint(sessions_url, persona=persona.slug, user_id=trial_user.pk)
    return sessions_url, health_url


def _signed_context(
    context: template.Context, persona: Persona, facts: Mapping[str, Any] | None
) -> str:
    """The tag's ``context=`` facts signed for this persona and user, or "" (logged when the
    facts are not a JSON-serialisable dict)."""
    if not facts:
        return ""
    if not isinstance(facts, Mapping):
        logger.warning(
            "voice_widget tag for persona %s: context= must be a dict, not %s.",
            persona.slug,
            type(facts).__name__,
        )
        return ""
    try:
        return sign_context(dict(facts), persona=persona.slug, user_id=_logged_in_user_id(context))
    except (TypeError, ValueError):
        logger.warning(
            "voice_widget tag for persona %s: context= is not JSON-serialisable; "
            "no signed context is sent.",
            persona.slug,
        )
        return ""


def _preview_mode(persona: Persona, preview: str | None, poster: str | None) -> str:
    """The preview the widget shows: the tag's, else the persona's; a poster given to the tag
    is meant to be seen, and a live preview without an avatar falls back to the poster."""
    mode = _choice(preview, PreviewMode, "preview", persona.slug, persona.preview_mode)
    if poster and not preview and mode == PreviewMode.NONE:
        mode = PreviewMode.POSTER
    if mode == PreviewMode.LIVE and not persona.has_avatar:
        logger.warning(
            "voice_widget tag for persona %s: a live preview needs an avatar; "
            "showing the poster (or the button) instead.",
            persona.slug,
        )
        mode = PreviewMode.POSTER if poster or persona.poster_url else PreviewMode.NONE
    return mode


def _agent_timeout(persona: Persona, agent_timeout: int | float | str | None) -> str:
    """The tag's ``agent_timeout`` as whole seconds (at least 1), or "" (logged if not a
    number) for the widget's default."""
    if agent_timeout in (None, ""):
        return ""
    try:
        return str(max(1, int(float(agent_timeout))))
    except (TypeError, ValueError):
        logger.warning(
            "voice_widget tag for persona %s: agent_timeout=%r is not a number.",
            persona.slug,
            agent_timeout,
        )
        return ""


def _logged_in_user_id(context: template.Context) -> Any:
    """The pk of the user the page is rendered for, so the facts vouch only for them."""
    user = getattr(context.get("request"), "user", None)
    return user.pk if user is not None and user.is_authenticated else None


def _csrf_token_for_logged_in_visitor(request: Any) -> str:
    """The API enforces CSRF for logged-in visitors only, so only they get the token (which
    works with an HttpOnly CSRF cookie too). Pages for anonymous visitors stay free of a
    CSRF cookie, and so stay cacheable."""
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return ""
    return get_token(request)


@register.simple_tag
def voice_widget_context(**facts: Any) -> dict[str, Any]:
    """Collect facts for ``context=`` in a template:
    ``{% voice_widget_context product=product.name price=product.price as facts %}``.
    Values are turned into strings, numbers or booleans so they can be signed.
    """
    clean: dict[str, Any] = {}
    for key, value in facts.items():
        if value is None or isinstance(value, bool | int | float | str):
            clean[key] = value
        else:
            clean[key] = str(value)
    return clean
