"""Persona versions: what changed between two saves, in an editor's words, and restoring one.

Every save of a persona writes a version (django-simple-history's ``HistoricalPersona``, a
full copy of the row with who, when and why). This module reads them for the admin: the
fields that changed with their old and new values (a word diff for long texts), and
restoring an old version as a new save, so restoring is itself in the history.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from .models import Persona

#: Long texts are shown as a word diff; short values as "old → new".
LONG_TEXT = 80
#: Words of unchanged text kept around each change in a word diff.
DIFF_CONTEXT_WORDS = 12


@dataclass
class FieldChange:
    name: str
    label: str
    old: Any
    new: Any
    is_text: bool = False  # a TextField (a prompt, a greeting): shown as a word diff

    @property
    def html(self) -> SafeString:
        """The change, readable: a word diff for texts, otherwise old → new."""
        old, new = _readable(self.old), _readable(self.new)
        if self.is_text or max(len(old), len(new)) > LONG_TEXT or "\n" in old + new:
            return word_diff(old, new)
        return format_html(
            '<del class="vw-old">{}</del> → <ins class="vw-new">{}</ins>',
            old or _("(empty)"),
            new or _("(empty)"),
        )


@dataclass
class Version:
    record: Any  # a HistoricalPersona
    number: int
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def user(self) -> Any:
        return self.record.history_user

    @property
    def date(self) -> Any:
        return self.record.history_date

    @property
    def reason(self) -> str:
        return self.record.history_change_reason or ""

    @property
    def is_first(self) -> bool:
        return self.number == 1


def tracked_fields() -> list[models.Field]:
    """The persona's fields an editor sets (not its id or timestamps)."""
    return [
        f
        for f in Persona._meta.concrete_fields
        if f.editable and not f.primary_key and f.name not in {"created_at", "updated_at"}
    ]


def _field_value(record: Any, f: models.Field) -> Any:
    value = getattr(record, f.attname)
    if f.choices and value not in (None, ""):
        return dict(f.flatchoices).get(value, value)
    return value


def _readable(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def version_fields(record: Any) -> list[tuple[str, str]]:
    """Every editor-set field of a version as (label, readable value), in form order."""
    return [(str(f.verbose_name), _readable(_field_value(record, f))) for f in tracked_fields()]


def changes_between(old: Any, new: Any) -> list[FieldChange]:
    """The editor-set fields whose value differs between two versions, in form order."""
    changes = []
    for f in tracked_fields():
        if getattr(old, f.attname) != getattr(new, f.attname):
            changes.append(
                FieldChange(
                    f.name,
                    str(f.verbose_name),
                    _field_value(old, f),
                    _field_value(new, f),
                    is_text=isinstance(f, models.TextField),
                )
            )
    return changes


def versions(persona: Persona, limit: int = 20) -> list[Version]:
    """The newest ``limit`` versions of ``persona``, newest first, each with its changes
    against the version before it (the first version has none)."""
    total = persona.history.count()
    # One more than shown: the oldest shown version is compared with the one before it.
    newest = list(
        persona.history.select_related("history_user").order_by("-history_date", "-history_id")[
            : limit + 1
        ]
    )
    result = []
    for index, record in enumerate(newest[:limit]):
        before = newest[index + 1] if index + 1 < len(newest) else None
        changes = changes_between(before, record) if before is not None else []
        result.append(Version(record, total - index, changes))
    return result


def version_number(record: Any) -> int:
    """The version's number in its persona's history (1 = the first)."""
    earlier = models.Q(history_date__lt=record.history_date) | models.Q(
        history_date=record.history_date, history_id__lt=record.history_id
    )
    return type(record).objects.filter(earlier, id=record.id).count() + 1


def word_diff(old: str, new: str) -> SafeString:
    """``old`` → ``new`` as text with deletions in ``<del>`` and insertions in ``<ins>``;
    long unchanged stretches are shortened to a few words around each change."""
    a, b = re.split(r"(\s+)", old), re.split(r"(\s+)", new)
    parts: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(("", _shorten("".join(a[i1:i2]), first=i1 == 0, last=i2 == len(a))))
            continue
        if i2 > i1:
            parts.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            parts.append(("ins", "".join(b[j1:j2])))
    html = format_html_join(
        "",
        "{}",
        (
            (format_html('<{} class="vw-{}">{}</{}>', tag, tag, text, tag) if tag else text,)
            for tag, text in parts
        ),
    )
    return format_html('<span class="vw-diff">{}</span>', html)


def _shorten(text: str, *, first: bool, last: bool) -> str:
    words = re.split(r"(\s+)", text)
    keep = DIFF_CONTEXT_WORDS * 2  # words and the spaces between them
    if len(words) <= keep * 2 + 1:
        return text
    head = "" if first else "".join(words[:keep])
    tail = "" if last else "".join(words[-keep:])
    return f"{head} … {tail}"


def restore(persona: Persona, record: Any, *, user: Any) -> Persona:
    """Save ``persona`` with the editor-set fields of the old version ``record`` (a new
    version, by ``user``). Raises ``ValidationError`` when that version is no longer
    valid (e.g. another persona took its slug since)."""
    if record.id != persona.pk:
        raise ValueError("That version belongs to another persona.")
    for f in tracked_fields():
        setattr(persona, f.attname, getattr(record, f.attname))
    persona.full_clean()
    persona._history_user = user
    persona._change_reason = _("Restored version %(number)d") % {"number": version_number(record)}
    persona.save()
    return persona
