"""System checks: misconfiguration shows up in ``manage.py check``, not as a 500."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from .conf import (
    DEFAULTS,
    DEV_LIVEKIT_API_KEY,
    DEV_LIVEKIT_API_SECRET,
    SETTING_NAME,
    is_local_url,
    settings_problem,
    vw_settings,
)
from .validators import is_origin

#: livekit-server refuses API secrets shorter than this outside dev mode.
MIN_SECRET_LENGTH = 32
LIVEKIT_URL_SCHEMES = ("ws", "wss", "http", "https")
_RATE_RE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


@register("voice_widget")
def check_livekit_settings(app_configs: Any = None, **kwargs: Any) -> list:
    if settings_problem():
        return []  # unreadable: voice_widget.E005 says why
    errors: list = []
    url = vw_settings.LIVEKIT_URL
    key = vw_settings.LIVEKIT_API_KEY
    secret = vw_settings.LIVEKIT_API_SECRET

    missing = [
        name
        for name, value in (
            ("LIVEKIT_URL", url),
            ("LIVEKIT_API_KEY", key),
            ("LIVEKIT_API_SECRET", secret),
        )
        if not value
    ]
    if missing and settings.DEBUG and url and not is_local_url(url):
        # DEBUG's livekit-server --dev key and secret only serve a server on this machine.
        errors.append(
            Error(
                f"LIVEKIT_URL {url!r} is not a local livekit-server --dev, and "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                "no token signed for it would be accepted.",
                hint=(
                    "Set LIVEKIT_API_KEY and LIVEKIT_API_SECRET (in the environment or in "
                    f"{SETTING_NAME}) to that server's API key and secret (LiveKit Cloud: the "
                    "project's Settings > API keys), or point LIVEKIT_URL at your local "
                    "livekit-server --dev (ws://127.0.0.1:7880)."
                ),
                id="voice_widget.E010",
            )
        )
    elif missing:
        errors.append(
            Error(
                f"LiveKit is not configured: {', '.join(missing)} missing.",
                hint=(
                    f"Set {SETTING_NAME}[{missing[0]!r}] in your settings or the {missing[0]} "
                    "environment variable (with DEBUG on, the livekit-server --dev defaults "
                    "are used)."
                ),
                id="voice_widget.E001",
            )
        )

    if url:
        parts = urlsplit(url)
        if parts.scheme not in LIVEKIT_URL_SCHEMES or not parts.netloc:
            errors.append(
                Error(
                    f"LIVEKIT_URL {url!r} is not a ws://, wss://, http:// or https:// URL.",
                    hint="Use the URL of your LiveKit server, e.g. wss://my-app.livekit.cloud.",
                    id="voice_widget.E002",
                )
            )

    if not settings.DEBUG:
        if key == DEV_LIVEKIT_API_KEY or secret == DEV_LIVEKIT_API_SECRET:
            errors.append(
                Error(
                    "The livekit-server --dev credentials (devkey / secret) are used with "
                    "DEBUG off.",
                    hint="Create a real API key and secret for your LiveKit server.",
                    id="voice_widget.E003",
                )
            )
        elif secret and len(secret) < MIN_SECRET_LENGTH:
            errors.append(
                Error(
                    f"LIVEKIT_API_SECRET is shorter than {MIN_SECRET_LENGTH} characters.",
                    hint="LiveKit requires secrets of at least 32 characters; generate a new one.",
                    id="voice_widget.E004",
                )
            )
    return errors


@register("voice_widget")
def check_voice_widget_values(app_configs: Any = None, **kwargs: Any) -> list:
    errors: list = []
    problem = settings_problem()
    if problem:
        return [
            Error(
                problem,
                hint=f"Write {SETTING_NAME} = {{'AGENT_NAME': ...}}.",
                id="voice_widget.E005",
            )
        ]
    for unknown in vw_settings.unknown_keys:
        errors.append(
            Warning(
                f"{SETTING_NAME}[{unknown!r}] is not a known setting and is ignored.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="voice_widget.W001",
            )
        )

    agent_name = vw_settings.AGENT_NAME
    if not isinstance(agent_name, str) or not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9_.-]*", agent_name
    ):
        errors.append(
            Error(
                f"{SETTING_NAME}['AGENT_NAME'] = {agent_name!r} is not a valid agent name.",
                hint="Use letters, digits, '-', '_' or '.', e.g. 'voice-widget'.",
                id="voice_widget.E006",
            )
        )

    for name in (
        "TOKEN_TTL",
        "MAX_CONTEXT_BYTES",
        "MAX_CONTEXT_DEPTH",
        "SIGNED_CONTEXT_MAX_AGE",
        "ROOM_EMPTY_TIMEOUT",
        "ROOM_DEPARTURE_TIMEOUT",
        "ROOM_MAX_PARTICIPANTS",
        "HEARTBEAT_INTERVAL",
        "HEARTBEAT_TIMEOUT",
        "CONSENT_MAX_AGE",
    ):
        value = getattr(vw_settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.append(
                Error(
                    f"{SETTING_NAME}[{name!r}] = {value!r} must be a positive whole number.",
                    hint=f"The default is {DEFAULTS[name]!r}.",
                    id="voice_widget.E007",
                )
            )

    rates = vw_settings.THROTTLE_RATES
    if not isinstance(rates, dict) or not all(
        value is None or (isinstance(value, str) and _RATE_RE.match(value))
        for value in rates.values()
    ):
        errors.append(
            Error(
                f"{SETTING_NAME}['THROTTLE_RATES'] = {rates!r} is not a dict of DRF rates.",
                hint="Write rates like {'anon': '10/minute', 'user': '30/minute'}; None disables.",
                id="voice_widget.E008",
            )
        )

    origins = vw_settings.ALLOWED_ORIGINS
    if not isinstance(origins, list | tuple) or not all(
        isinstance(origin, str) and is_origin(origin) for origin in origins
    ):
        errors.append(
            Error(
                f"{SETTING_NAME}['ALLOWED_ORIGINS'] = {origins!r} is not a list of origins.",
                hint="Write origins as scheme://host[:port] with no path, e.g. "
                "'https://shop.example.com'.",
                id="voice_widget.E009",
            )
        )
    return errors
