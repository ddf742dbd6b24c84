"""The editors' report: per persona and per day, how many conversations, how long, how they
ended, what they cost and (when the worker records it) how quickly the agent answered.

Days are the site's days (``TIME_ZONE``), like the daily budgets. Charts are SVG drawn here
on the server: no JavaScript, no chart library, readable without colour (each bar has its
value as a tooltip and the table below carries every number).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from .costs import COST_VALUES, format_amount, price_table, row_cost
from .models import Conversation, EndReason, Persona, Turn

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


def latency_fields() -> list[models.Field]:
    """The Turn fields holding the latency figures the worker records (seconds)."""
    return [Turn._meta.get_field(name) for name in Turn.LATENCY_FIELDS]


@dataclass
class DayStats:
    """One persona's day (or the whole period, for the totals row)."""

    day: date | None
    conversations: int = 0
    talk_seconds: float = 0.0
    timed: int = 0  # conversations with a duration (ended)
    end_reasons: Counter = field(default_factory=Counter)
    cost: Decimal = Decimal(0)
    unpriced: int = 0
    latency_values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def average_seconds(self) -> float | None:
        return self.talk_seconds / self.timed if self.timed else None

    def latency_medians(self, names: list[str]) -> list[float | None]:
        return [
            statistics.median(self.latency_values[name]) if self.latency_values[name] else None
            for name in names
        ]

    def add(self, other: DayStats) -> None:
        self.conversations += other.conversations
        self.talk_seconds += other.talk_seconds
        self.timed += other.timed
        self.end_reasons.update(other.end_reasons)
        self.cost += other.cost
        self.unpriced += other.unpriced
        for name, values in other.latency_values.items():
            self.latency_values[name].extend(values)


@dataclass
class PersonaReport:
    persona: Persona
    days: list[DayStats]
    total: DayStats


def period_bounds(days: int, now: datetime | None = None) -> tuple[list[date], datetime]:
    """The last ``days`` local dates (today included) and the start of the first."""
    zone = timezone.get_default_timezone()
    today = (now or timezone.now()).astimezone(zone).date()
    dates = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    return dates, datetime.combine(dates[0], time.min, tzinfo=zone)


def build_report(
    days: int = DEFAULT_PERIOD, persona: Persona | None = None, now: datetime | None = None
) -> list[PersonaReport]:
    """The report for the last ``days`` days, for one persona or every persona that talked."""
    zone = timezone.get_default_timezone()
    dates, since = period_bounds(days, now)
    conversations = Conversation.objects.filter(created_at__gte=since)
    if persona is not None:
        conversations = conversations.filter(persona=persona)
    prices = price_table()
    stats: dict[int, dict[date, DayStats]] = defaultdict(dict)
    day_of: dict[Any, tuple[int, date]] = {}
    for row in conversations.values("pk", "persona_id", "end_reason", *COST_VALUES):
        day = row["created_at"].astimezone(zone).date()
        cell = stats[row["persona_id"]].setdefault(day, DayStats(day))
        day_of[row["pk"]] = (row["persona_id"], day)
        cell.conversations += 1
        if row["ended_at"] is not None:
            cell.timed += 1
            since_start = row["started_at"] or row["created_at"]
            cell.talk_seconds += max((row["ended_at"] - since_start).total_seconds(), 0.0)
        if row["end_reason"]:
            cell.end_reasons[row["end_reason"]] += 1
        estimate = row_cost(row, prices)
        cell.cost += estimate.total
        cell.unpriced += 0 if estimate.complete else 1

    names = [f.name for f in latency_fields()]
    if names and day_of:
        turns = Turn.objects.filter(conversation__in=conversations).values_list(
            "conversation_id", *names
        )
        for conversation_id, *values in turns:
            persona_id, day = day_of[conversation_id]
            cell = stats[persona_id][day]
            for name, value in zip(names, values, strict=True):
                if value is not None:
                    cell.latency_values[name].append(float(value))

    personas = Persona.objects.in_bulk(list(stats))
    reports = []
    for persona_id, by_day in sorted(stats.items(), key=lambda item: personas[item[0]].name):
        rows = [by_day.get(day) or DayStats(day) for day in dates]
        total = DayStats(None)
        for row in rows:
            total.add(row)
        reports.append(PersonaReport(personas[persona_id], rows, total))
    return reports


def format_duration(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on), or an en dash."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def end_reason_summary(reasons: Counter) -> str:
    labels = dict(EndReason.choices)
    return " · ".join(
        f"{labels.get(reason, reason)} {count}" for reason, count in reasons.most_common()
    )


# --- charts ------------------------------------------------------------------------------------

CHART_WIDTH = 360
CHART_HEIGHT = 150
_MARGIN_LEFT = 4
_MARGIN_TOP = 20
_AXIS_HEIGHT = 20


def bar_chart(
    title: str, days: list[date], values: list[float], value_label: Any = str
) -> SafeString:
    """An SVG bar chart of one value per day, scaled to the largest.

    It scales to its container (``viewBox``); the title names it for screen readers, each
    bar's tooltip gives its day and value, and the first, middle and last days are labelled."""
    top = max(values, default=0) or 1
    plot_height = CHART_HEIGHT - _MARGIN_TOP - _AXIS_HEIGHT
    slot = (CHART_WIDTH - 2 * _MARGIN_LEFT) / max(len(values), 1)
    bar_width = max(slot * 0.75, 1.0)
    bars = []
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        height = plot_height * value / top if value else 0
        x = _MARGIN_LEFT + index * slot + (slot - bar_width) / 2
        y = _MARGIN_TOP + plot_height - height
        bars.append(
            (
                f"{x:.1f}",
                f"{y:.1f}",
                f"{bar_width:.1f}",
                f"{max(height, 0.0):.1f}",
                f"{day:%a %d %b}: {value_label(value)}",
            )
        )
    bar_markup = format_html_join(
        "",
        '<rect class="vw-bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        bars,
    )
    label_indexes = sorted({0, len(days) // 2, len(days) - 1}) if days else []
    labels = format_html_join(
        "",
        '<text class="vw-axis" x="{}" y="{}" text-anchor="{}">{}</text>',
        (
            (
                f"{_MARGIN_LEFT + index * slot + slot / 2:.1f}",
                CHART_HEIGHT - 6,
                "start" if index == 0 else "end" if index == len(days) - 1 else "middle",
                f"{days[index]:%d %b}",
            )
            for index in label_indexes
        ),
    )
    baseline = _MARGIN_TOP + plot_height
    summary = _("%(title)s: highest %(top)s, total %(total)s.") % {
        "title": title,
        "top": value_label(max(values, default=0)),
        "total": value_label(sum(values)),
    }
    return format_html(
        '<svg class="vw-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{summary}" '
        ">"
        '<text class="vw-axis" x="{m}" y="13">{top_label}</text>'
        '<line class="vw-baseline" x1="{m}" x2="{right}" y1="{base}" y2="{base}"/>'
        "{bars}{labels}</svg>",
        w=CHART_WIDTH,
        h=CHART_HEIGHT,
        summary=summary,
        m=_MARGIN_LEFT,
        right=CHART_WIDTH - _MARGIN_LEFT,
        base=baseline,
        top_label=_("max %(value)s") % {"value": value_label(max(values, default=0))},
        bars=bar_markup,
        labels=labels,
    )


def charts_for(report: PersonaReport, currency: str) -> list[tuple[str, SafeString]]:
    days = [row.day for row in report.days]
    conversations = _("Conversations per day")
    minutes = _("Talking minutes per day")
    cost = _("Estimated cost per day (%(currency)s)") % {"currency": currency}
    return [
        (
            conversations,
            bar_chart(conversations, days, [row.conversations for row in report.days], _count),
        ),
        (
            minutes,
            bar_chart(minutes, days, [row.talk_seconds / 60 for row in report.days], _minutes),
        ),
        (
            cost,
            bar_chart(
                cost,
                days,
                [float(row.cost) for row in report.days],
                lambda value: format_amount(Decimal(str(value))),
            ),
        ),
    ]


def _count(value: float) -> str:
    return str(round(value))


def _minutes(value: float) -> str:
    return f"{value:.1f} min"
