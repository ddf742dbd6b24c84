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


def normalize_origin(value: str) -> str:
    """Lower-case scheme and host, as browsers send them in the ``Origin`` header."""
    return value.strip().rstrip("/").lower()


def split_origins(text: str) -> list[str]:
    """The origins in a text field, one per line or separated by commas or spaces."""
    return [normalize_origin(item) for item in re.split(r"[\s,]+", text or "") if item.strip()]


def validate_origins_text(text: str) -> None:
    bad = [origin for origin in split_origins(text) if not is_origin(origin)]
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
