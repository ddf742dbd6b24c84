"""Validators shared by the models, the system checks and the API."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# A pragmatic BCP-47 subset: language, optional script, optional region (en, de-DE, zh-Hans-CN).
_BCP47_RE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z]{4})?(-([a-zA-Z]{2}|\d{3}))?$")
_HEX_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def is_origin(value: str) -> bool:
    """True for ``scheme://host[:port]`` with no path, query or fragment."""
    parts = urlsplit(value.strip())
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.path == ""
        and not parts.query
        and not parts.fragment
        and not parts.username
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_origin(value: str) -> str:
    """``scheme://host[:port]`` lower-cased, without a default port or trailing slash.

    The one normal form of an origin: what browsers send in ``Origin``, compared with what
    editors and settings list. A value that is no origin comes back only trimmed and lowered.
    """
    value = (value or "").strip().rstrip("/").lower()
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return value
    if not parts.scheme or not parts.hostname:
        return value
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _origin_items(text: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", text or "") if item.strip()]


def split_origins(text: str) -> list[str]:
    """The origins in a text field (one per line, or separated by commas or spaces), canonical."""
    return [canonical_origin(item) for item in _origin_items(text)]


def validate_origins_text(text: str) -> None:
    # Validated as written: the canonical form would hide a path or a user name.
    bad = [item for item in _origin_items(text) if not is_origin(item.rstrip("/"))]
    if bad:
        raise ValidationError(
            _(
                "These are not origins: %(bad)s. Write each as scheme://host[:port] with no "
                "path, e.g. https://shop.example.com."
            ),
            params={"bad": ", ".join(bad)},
            code="invalid_origin",
        )


def validate_language_tag(value: str) -> None:
    if not _BCP47_RE.match(value or ""):
        raise ValidationError(
            _("“%(value)s” is not a language tag. Use a BCP-47 tag such as en, en-US or de-DE."),
            params={"value": value},
            code="invalid_language",
        )


def validate_hex_color(value: str) -> None:
    if value and not _HEX_COLOR_RE.match(value):
        raise ValidationError(
            _("“%(value)s” is not a colour. Use six hex digits, e.g. #2563eb."),
            params={"value": value},
            code="invalid_color",
        )
