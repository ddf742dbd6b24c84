"""System checks: misconfiguration shows up in ``manage.py check``, not as a 500."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import (
    DEFAULTS,
    DEV_LIVEKIT_API_KEY,
    DEV_LIVEKIT_API_SECRET,
    SETTING_NAME,
    is_local_url,
    settings_problem,
    vw_settings,
)
from .costs import price_problems
from .providers import PRICE_RATES
from .validators import is_origin

#: livekit-server refuses API secrets shorter than this outside dev mode.
MIN_SECRET_LENGTH = 32
LIVEKIT_URL_SCHEMES = ("ws", "wss", "http", "https")
_RATE_RE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


@register("voice_widget")
def check_livekit_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """LiveKit's URL, key and secret: present, a URL, and no dev pair in production."""
    if settings_problem():
        return []  # unreadable: voice_widget.E005 says why
    url = vw_settings.LIVEKIT_URL
    key = vw_settings.LIVEKIT_API_KEY
    secret = vw_settings.LIVEKIT_API_SECRET
    return [
        *_missing_livekit_settings(url, key, secret),
        *_livekit_url_problems(url),
        *([] if settings.DEBUG else _dev_credentials_in_production(key, secret)),
    ]


def _missing_livekit_settings(url: str | None, key: str | None, secret: str | None) -> list:
    missing = [
        name
        for name, value in (
            ("LIVEKIT_URL", url),
            ("LIVEKIT_API_KEY", key),
            ("LIVEKIT_API_SECRET", secret),
        )
        if not value
    ]
    if not missing:
        return []
    if settings.DEBUG and url and not is_local_url(url):
        # DEBUG's livekit-server --dev key and secret only serve a server on this machine.
        return [
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
        ]
    return [
        Error(
            f"LiveKit is not configured: {', '.join(missing)} missing.",
            hint=(
                f"Set {SETTING_NAME}[{missing[0]!r}] in your settings or the {missing[0]} "
                "environment variable (with DEBUG on, the livekit-server --dev defaults "
                "are used)."
            ),
            id="voice_widget.E001",
        )
    ]


def _livekit_url_problems(url: str | None) -> list:
    if not url:
        return []
    parts = urlsplit(url)
    if parts.scheme in LIVEKIT_URL_SCHEMES and parts.netloc:
        return []
    return [
        Error(
            f"LIVEKIT_URL {url!r} is not a ws://, wss://, http:// or https:// URL.",
            hint="Use the URL of your LiveKit server, e.g. wss://my-app.livekit.cloud.",
            id="voice_widget.E002",
        )
    ]


def _dev_credentials_in_production(key: str | None, secret: str | None) -> list:
    if key == DEV_LIVEKIT_API_KEY or secret == DEV_LIVEKIT_API_SECRET:
        return [
            Error(
                "The livekit-server --dev credentials (devkey / secret) are used with DEBUG off.",
                hint="Create a real API key and secret for your LiveKit server.",
                id="voice_widget.E003",
            )
        ]
    if secret and len(secret) < MIN_SECRET_LENGTH:
        return [
            Error(
                f"LIVEKIT_API_SECRET is shorter than {MIN_SECRET_LENGTH} characters.",
                hint="LiveKit requires secrets of at least 32 characters; generate a new one.",
                id="voice_widget.E004",
            )
        ]
    return []


def _is_agent_name(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value))


def _is_positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value > 0


def _is_whole_seconds(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _is_positive_int_or_none(value: Any) -> bool:
    return value is None or _is_positive_int(value)


def _is_non_negative_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _is_seconds(value: Any, *, zero_allowed: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value >= 0 if zero_allowed else value > 0


def _is_rate_table(value: Any) -> bool:
    return isinstance(value, dict) and all(
        rate is None or (isinstance(rate, str) and _RATE_RE.match(rate)) for rate in value.values()
    )


def _is_origin_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(origin, str) and is_origin(origin) for origin in value
    )


@dataclass(frozen=True)
class ValueRule:
    """One rule for settings' values: which keys, what a good value is, what to say."""

    keys: tuple[str, ...]
    valid: Callable[[Any], bool]
    problem: str  # completes "VOICE_WIDGET['KEY'] = value ..."
    hint: str  # may name {default}
    id: str


#: Every value rule, in one table: a new setting adds a row (or its key to a row).
VALUE_RULES = (
    ValueRule(
        ("AGENT_NAME",),
        _is_agent_name,
        "is not a valid agent name.",
        "Use letters, digits, '-', '_' or '.', e.g. 'voice-widget'.",
        "voice_widget.E006",
    ),
    ValueRule(
        (
            "TOKEN_TTL",
            "MAX_CONTEXT_BYTES",
            "MAX_CONTEXT_DEPTH",
            "SIGNED_CONTEXT_MAX_AGE",
            "ROOM_EMPTY_TIMEOUT",
            "ROOM_DEPARTURE_TIMEOUT",
            "ROOM_MAX_PARTICIPANTS",
            "HEARTBEAT_INTERVAL",
            "HEARTBEAT_TIMEOUT",
            "PROVIDER_FAILURES_TO_END",
            "CONSENT_MAX_AGE",
        ),
        _is_positive_int,
        "must be a positive whole number.",
        "The default is {default!r}.",
        "voice_widget.E007",
    ),
    ValueRule(
        ("MAX_UNJOINED_PER_VISITOR",),
        _is_positive_int_or_none,
        "must be a positive whole number or None.",
        "The default is {default!r}; None switches the limit off.",
        "voice_widget.E007",
    ),
    ValueRule(
        ("RETENTION_DAYS",),
        _is_positive_int_or_none,
        "must be a positive whole number of days, or None.",
        "E.g. 90 keeps transcripts and page context for 90 days (run "
        "'manage.py purge_voice_widget' daily); None keeps them forever.",
        "voice_widget.E022",
    ),
    ValueRule(
        ("RESUME_WINDOW",),
        _is_whole_seconds,
        "must be a whole number of seconds, 0 or more.",
        "The default is {default!r} (two minutes to come back after a reload); 0 ends a "
        "conversation as soon as its page goes.",
        "voice_widget.E007",
    ),
    ValueRule(
        ("THROTTLE_RATES",),
        _is_rate_table,
        "is not a dict of DRF rates.",
        "Write rates like {{'anon': '10/minute', 'user': '30/minute'}}; None disables.",
        "voice_widget.E008",
    ),
    ValueRule(
        ("ALLOWED_ORIGINS",),
        _is_origin_list,
        "is not a list of origins.",
        "Write origins as scheme://host[:port] with no path, e.g. 'https://shop.example.com'.",
        "voice_widget.E009",
    ),
    ValueRule(
        ("PROVIDER_MAX_RETRY",),
        _is_non_negative_int,
        "must be a whole number of retries, 0 or more.",
        "The default is {default!r}.",
        "voice_widget.E011",
    ),
    ValueRule(
        ("PROVIDER_RETRY_INTERVAL",),
        lambda value: _is_seconds(value, zero_allowed=True),
        "must be a number of seconds, 0 or more.",
        "The default is {default!r}.",
        "voice_widget.E011",
    ),
    ValueRule(
        ("PROVIDER_TIMEOUT",),
        lambda value: _is_seconds(value, zero_allowed=False),
        "must be a number of seconds above 0.",
        "The default is {default!r}.",
        "voice_widget.E011",
    ),
)


@register("voice_widget")
def check_voice_widget_values(app_configs: Any = None, **kwargs: Any) -> list:
    problem = settings_problem()
    if problem:
        return [
            Error(
                problem,
                hint=f"Write {SETTING_NAME} = {{'AGENT_NAME': ...}}.",
                id="voice_widget.E005",
            )
        ]
    errors: list = [
        Warning(
            f"{SETTING_NAME}[{unknown!r}] is not a known setting and is ignored.",
            hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
            id="voice_widget.W001",
        )
        for unknown in vw_settings.unknown_keys
    ]
    for rule in VALUE_RULES:
        for key in rule.keys:
            value = getattr(vw_settings, key)
            if not rule.valid(value):
                errors.append(
                    Error(
                        f"{SETTING_NAME}[{key!r}] = {value!r} {rule.problem}",
                        hint=rule.hint.format(default=DEFAULTS[key]),
                        id=rule.id,
                    )
                )
    return errors


@register("voice_widget", Tags.security, deploy=True)
def check_throttle_cache(app_configs: Any = None, **kwargs: Any) -> list:
    """The session throttles hold only in a cache that all processes share and that
    increments atomically; a deployment check, since a laptop's one process is fine."""
    if settings_problem():
        return []  # unreadable: voice_widget.E005 says why
    rates = vw_settings.THROTTLE_RATES
    if not isinstance(rates, dict) or not any(rates.values()):
        return []  # throttles off, or voice_widget.E008 about the rates
    # Here, not at the top: the API module imports DRF, which checks.py otherwise needs not.
    from .api.throttling import throttle_cache_problem

    problem = throttle_cache_problem()
    if problem is None:
        return []
    return [
        Warning(
            f"The session endpoint's throttles count in the 'default' cache, which {problem}.",
            hint=(
                "Use a cache shared by every web process with atomic increments, e.g. "
                "CACHES = {'default': {'BACKEND': "
                "'django.core.cache.backends.redis.RedisCache', "
                "'LOCATION': 'redis://127.0.0.1:6379/0'}} (or Memcached); the example site "
                "reads it from REDIS_URL."
            ),
            id="voice_widget.W002",
        )
    ]


@register("voice_widget")
def check_prices(app_configs: Any = None, **kwargs: Any) -> list:
    """The price table behind cost estimates and money budgets."""
    if settings_problem():
        return []
    errors: list = []
    problems = price_problems(vw_settings.PRICES)
    if problems:
        errors.append(
            Error(
                f"{SETTING_NAME}['PRICES'] is not a valid price table: {' '.join(problems)}",
                hint=(
                    "Write {'provider/model': {'input_per_1m': '0.15', 'output_per_1m': "
                    "'0.60'}} with rates from: " + ", ".join(PRICE_RATES) + "; None removes "
                    "a list price. The list prices are in voice_widget/providers.py."
                ),
                id="voice_widget.E020",
            )
        )
    currency = vw_settings.CURRENCY
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z$€£¥]{1,5}", currency.strip()):
        errors.append(
            Error(
                f"{SETTING_NAME}['CURRENCY'] = {currency!r} is not a currency code.",
                hint="Use a short code such as 'USD' or 'EUR', the currency of PRICES.",
                id="voice_widget.E021",
            )
        )

    return errors
