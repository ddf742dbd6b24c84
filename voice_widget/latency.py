"""How fast a persona answers: the latency figures the worker keeps on each agent line
(``Turn.LATENCY_FIELDS``), and their median and 95th percentile over a period.

Computed in Python from the period's values, so it reads the same on SQLite and PostgreSQL
(SQLite has no percentile function).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Persona, Turn, TurnRole

#: The periods the admin offers, in days; the first is the default.
PERIOD_DAYS = (7, 1, 30)

#: Short column labels of the figures, in ``Turn.LATENCY_FIELDS`` order.
SHORT_LABELS = {
    "eou_delay": _("end of turn"),
    "transcription_delay": _("transcript"),
    "llm_ttft": _("LLM"),
    "tts_ttfb": _("first audio"),
    "e2e_latency": _("end to end"),
}


@dataclass(frozen=True)
class LatencyFigure:
    """One figure of a persona's replies over a period (seconds; None without values)."""

    field: str
    label: str
    description: str
    count: int
    median: float | None
    p95: float | None


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted, non-empty values."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def format_seconds(value: float | None) -> str:
    """A latency as people read it: milliseconds, e.g. ``420 ms``."""
    return "–" if value is None else f"{round(value * 1000)} ms"


def persona_latency(
    persona: Persona, *, days: int, now: datetime | None = None
) -> list[LatencyFigure]:
    """Median and 95th percentile of each figure over the agent lines of ``persona``'s
    conversations in the last ``days`` days."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = Turn.objects.filter(
        conversation__persona=persona, role=TurnRole.AGENT, created_at__gte=since
    ).values_list(*Turn.LATENCY_FIELDS)
    columns: dict[str, list[float]] = {name: [] for name in Turn.LATENCY_FIELDS}
    for row in rows.iterator():
        for name, value in zip(Turn.LATENCY_FIELDS, row, strict=True):
            if value is not None:
                columns[name].append(value)
    figures = []
    for name, values in columns.items():
        values.sort()
        field = Turn._meta.get_field(name)
        figures.append(
            LatencyFigure(
                field=name,
                label=str(field.verbose_name),
                description=str(field.help_text),
                count=len(values),
                median=statistics.median(values) if values else None,
                p95=percentile(values, 0.95) if values else None,
            )
        )
    return figures
