"""Request body parsers that read no more than the API needs.

DRF's parsers read the whole body; a visitor's request is a few kilobytes at most, so
ours stop reading past a bound and answer 413 instead of buffering whatever arrives.
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, DataAndFiles, MultiPartParser, get_encoding

from ..conf import vw_settings
from .errors import RequestTooLarge

#: Room in a session request for everything besides the two contexts (persona, page URL).
_BODY_OVERHEAD = 16 * 1024


def max_body_bytes() -> int:
    """The largest request body accepted: both contexts at their limit, plus the rest."""
    return 4 * int(vw_settings.MAX_CONTEXT_BYTES) + _BODY_OVERHEAD


def refuse_declared_oversized_body(request: HttpRequest) -> None:
    """413 for a body whose ``Content-Length`` is over the limit, before reading any of it."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # what Django makes of it too; the bounded read still applies
    limit = max_body_bytes()
    if declared > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes.")


def read_bounded(stream: Any) -> bytes:
    limit = max_body_bytes()
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
    return raw


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        raw = read_bounded(stream)
        try:
            return json.loads(raw.decode(get_encoding(parser_context or {})))
        except (ValueError, RecursionError) as exc:
            # RecursionError: absurdly nested JSON must be a 400, not a 500.
            raise ParseError("The request body is not valid JSON.") from exc


class PlainTextJSONParser(BoundedJSONParser):
    """JSON sent as ``text/plain``: what ``navigator.sendBeacon(url, string)`` sends.

    A text/plain POST is a CORS "simple request", so a beacon from another site needs
    no preflight (and gets none of our CORS headers; it does not need to read the answer).
    """

    media_type = "text/plain"


class BoundedFormParser(BaseParser):
    """``application/x-www-form-urlencoded``, e.g. a beacon sent with ``URLSearchParams``."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {}) or settings.DEFAULT_CHARSET
        return QueryDict(read_bounded(stream), encoding=encoding)


class BoundedMultiPartParser(MultiPartParser):
    """``multipart/form-data`` (a beacon sent with ``FormData``), read within the bound:
    Django's own parser would stream file parts of any size to temporary files. Going over
    Django's ``DATA_UPLOAD_*`` limits is our 413 / 400 with a detail, not an empty 400."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        raw = read_bounded(stream)
        meta = parser_context["request"].META.copy()
        meta["CONTENT_TYPE"] = media_type
        meta["CONTENT_LENGTH"] = str(len(raw))
        upload_handlers = parser_context["request"].upload_handlers
        try:
            parser = DjangoMultiPartParser(
                meta, io.BytesIO(raw), upload_handlers, get_encoding(parser_context)
            )
            return DataAndFiles(*parser.parse())
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        except RequestDataTooBig as exc:
            raise RequestTooLarge("A field of the multipart form is too large.") from exc
        except SuspiciousOperation as exc:  # TooManyFieldsSent, TooManyFilesSent
            raise ParseError(
                "The multipart form has more fields or files than this endpoint accepts."
            ) from exc
