"""A persona's daily budget: what today's conversations cost (or lasted), and whether a new
one may start.

"Today" is the site's day: from midnight in ``TIME_ZONE`` (not the visitor's time zone, nor
one a request activated). A conversation belongs to the day it was created. Money counts
the estimated cost of the conversations whose usage is recorded (at their end); minutes
count talking time, including the time so far of conversations still talking. Conversations
in progress are never cut: a day can end above its budget by what they cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from .conf import vw_settings
from .costs import COST_VALUES, format_amount, price_table, row_cost
from .models import BudgetUnit, Conversation, Persona

logger = logging.getLogger(__name__)

SIXTY = Decimal(60)


def local_day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of tomorrow in ``TIME_ZONE`` (aware datetimes)."""
    zone = timezone.get_default_timezone()
    today = (now or timezone.now()).astimezone(zone).date()
    start = datetime.combine(today, time.min, tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def spent_today(persona: Persona, now: datetime | None = None) -> Decimal:
    """What the persona's conversations of today have used, in its budget's unit (money in
    ``CURRENCY``, or minutes)."""
    now = now or timezone.now()
    start, end = local_day_bounds(now)
    conversations = Conversation.objects.filter(
        persona=persona, created_at__gte=start, created_at__lt=end
    )
    if persona.daily_budget_unit == BudgetUnit.MINUTES:
        total = Decimal(0)
        for started, ended, created in conversations.values_list(
            "started_at", "ended_at", "created_at"
        ):
            if ended is not None:
                seconds = (ended - (started or created)).total_seconds()
            elif started is not None:
                seconds = (now - started).total_seconds()  # still talking: so far
            else:
                continue  # waiting for the visitor's click: no minutes yet
            total += Decimal(str(max(seconds, 0.0))) / SIXTY
        return total
    prices = price_table()
    return sum(
        (
            row_cost(row, prices).total
            for row in conversations.exclude(usage={}).values(*COST_VALUES)
        ),
        Decimal(0),
    )


@dataclass(frozen=True)
class BudgetRefusal:
    """Why a new conversation may not start today, and how long until it may."""

    detail: str
    retry_after: int


def daily_budget_refusal(persona: Persona, now: datetime | None = None) -> BudgetRefusal | None:
    """A refusal when today's total has reached the persona's daily budget, else None."""
    budget = persona.daily_budget
    if budget is None:
        return None
    now = now or timezone.now()
    spent = spent_today(persona, now)
    if spent < budget:
        return None
    _start, midnight = local_day_bounds(now)
    if persona.daily_budget_unit == BudgetUnit.MINUTES:
        amount = f"{spent.quantize(Decimal('0.1'))} of {budget} minutes"
    else:
        amount = f"{format_amount(spent)} of {budget} {vw_settings.CURRENCY}"
    logger.info("persona %s: daily budget reached (%s); new session refused", persona.slug, amount)
    detail = (
        f"This assistant has used its daily budget ({amount}) and is not available until "
        f"midnight ({timezone.get_default_timezone_name()})."
    )
    return BudgetRefusal(detail=detail, retry_after=max(int((midnight - now).total_seconds()), 1))
