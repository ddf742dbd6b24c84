"""What a conversation cost: its recorded usage times the price table.

The usage (``Conversation.usage``, written by the worker from livekit-agents' per-model
usage) holds one row per provider and model actually used, fallbacks included; each row is
priced on its own. Avatar minutes are not in the usage: they are the avatar's time in the
room, from the agent joining (a live preview idles there too) to the end.

Costs are computed when asked, not stored: a corrected price applies to past conversations
too, and the worker's last usage update (after the ending) needs no second write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from . import providers as catalogue
from .conf import SETTING_NAME, vw_settings
from .providers import DEFAULT_PRICES, PRICE_ALIASES, PRICE_RATES, USAGE_PROVIDER_NAMES

MILLION = Decimal(1_000_000)
THOUSAND = Decimal(1_000)
SIXTY = Decimal(60)
_DATED_MODEL = re.compile(r"-\d{4}-\d{2}-\d{2}$")

Prices = dict[str, dict[str, Decimal]]


def _rate(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return rate if rate.is_finite() and rate >= 0 else None


def price_problems(prices: Any) -> list[str]:
    """What is wrong with a ``PRICES`` setting (empty: nothing), for the system check."""
    if not isinstance(prices, Mapping):
        return [f"{SETTING_NAME}['PRICES'] must be a dict, not {type(prices).__name__}."]
    problems = []
    for key, rates in prices.items():
        if not isinstance(key, str) or not key.strip():
            problems.append(f"{key!r} is not a 'provider/model' key.")
        elif rates is None:
            continue
        elif not isinstance(rates, Mapping) or not rates:
            problems.append(f"{key!r} must map rate names to prices (or be None).")
        else:
            for name, value in rates.items():
                if name not in PRICE_RATES:
                    problems.append(f"{key!r} has an unknown rate {name!r}.")
                elif _rate(value) is None:
                    problems.append(f"{key!r}: {name} = {value!r} is not a price of 0 or more.")
    return problems


def price_table() -> Prices:
    """The list prices with the site's ``PRICES`` over them, as Decimals.

    A site entry replaces the default of the same key as a whole; ``None`` removes it. An
    invalid entry is left out (``manage.py check`` names it)."""
    table: Prices = {
        key: {name: Decimal(value) for name, value in rates.items()}
        for key, rates in DEFAULT_PRICES.items()
    }
    overrides = vw_settings.PRICES
    if not isinstance(overrides, Mapping):
        return table
    for key, rates in overrides.items():
        if not isinstance(key, str):
            continue
        if rates is None:
            table.pop(key, None)
            continue
        if not isinstance(rates, Mapping):
            continue
        parsed = {name: _rate(value) for name, value in rates.items() if name in PRICE_RATES}
        if parsed and all(value is not None for value in parsed.values()):
            table[key] = parsed  # type: ignore[assignment]
    return table


def find_price(provider: str, model: str, prices: Prices) -> tuple[str, dict[str, Decimal]] | None:
    """The price table's entry for a provider's model: ``(key, rates)``, or None.

    LiveKit Inference names the provider in the model (``deepgram/nova-3``), priced as that
    provider's model; Azure OpenAI is priced as OpenAI; a dated model name
    (``gpt-4o-mini-2024-07-18``) falls back to its undated one; a key naming the provider
    alone prices all its models."""
    provider = (provider or "").strip()
    model = (model or "").strip()
    candidates: list[str] = []
    entry = catalogue.get(provider)
    if entry and entry.routes_models and "/" in model:
        candidates.append(model)
        provider, model = model.split("/", 1)
    providers = [provider] + ([PRICE_ALIASES[provider]] if provider in PRICE_ALIASES else [])
    models = [model] + ([_DATED_MODEL.sub("", model)] if _DATED_MODEL.search(model) else [])
    candidates += [f"{p}/{m}" for p in providers for m in models if m]
    candidates += providers
    for key in candidates:
        if key in prices:
            return key, prices[key]
    return None


@dataclass(frozen=True)
class CostEstimate:
    """A conversation's estimated cost: the total, its parts, and what had no price."""

    total: Decimal
    parts: tuple[tuple[str, Decimal], ...] = ()
    unpriced: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.unpriced


# Which persona fields name the provider and model of each kind of usage row.
_STAGE_FIELDS = {
    "llm_usage": (("llm_provider", "llm_model"), ("llm_fallback_provider", "llm_fallback_model")),
    "tts_usage": (("tts_provider", "tts_model"), ("tts_fallback_provider", "tts_fallback_model")),
    "stt_usage": (("stt_provider", "stt_model"), ("stt_fallback_provider", "stt_fallback_model")),
}
_REALTIME_FIELDS = (("realtime_provider", "realtime_model"),)
_STAGE_LABELS = {"llm_usage": "LLM", "tts_usage": "TTS", "stt_usage": "STT"}


def _stage_candidates(kind: str, snapshot: Mapping[str, Any]) -> list[tuple[str, str]]:
    if kind == "llm_usage" and snapshot.get("pipeline_kind") == "realtime":
        pairs = _REALTIME_FIELDS
    else:
        pairs = _STAGE_FIELDS.get(kind, ())
    return [
        (str(snapshot.get(p) or ""), str(snapshot.get(m) or ""))
        for p, m in pairs
        if snapshot.get(p)
    ]


def _rows_from_totals(usage: Mapping[str, Any], snapshot: Mapping[str, Any]) -> list[dict]:
    """Usage recorded without per-model rows: the totals, on the persona's primary models."""
    rows = []
    for kind, amounts in (
        (
            "llm_usage",
            {
                "input_tokens": usage.get("llm_input_tokens", 0),
                "input_cached_tokens": usage.get("llm_cached_input_tokens", 0),
                "output_tokens": usage.get("llm_output_tokens", 0),
            },
        ),
        (
            "tts_usage",
            {
                "characters_count": usage.get("tts_characters", 0),
                "audio_duration": usage.get("tts_audio_seconds", 0),
            },
        ),
        ("stt_usage", {"audio_duration": usage.get("stt_audio_seconds", 0)}),
    ):
        if any(amounts.values()):
            candidates = _stage_candidates(kind, snapshot)
            provider, model = candidates[0] if candidates else ("", "")
            rows.append({"type": kind, "provider": provider, "model": model, **amounts})
    return rows


def _number(row: Mapping[str, Any], key: str) -> Decimal:
    value = row.get(key) or 0
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _price_row(row: Mapping[str, Any], rates: Mapping[str, Decimal]) -> tuple[Decimal, str]:
    """The cost of one usage row, and what in it had no rate ("" when all had one)."""
    kind = row.get("type")
    if kind == "llm_usage":
        audio_in = _number(row, "input_audio_tokens")
        cached_audio = _number(row, "input_cached_audio_tokens")
        audio_out = _number(row, "output_audio_tokens")
        text_in = _number(row, "input_tokens") - audio_in
        cached_text = _number(row, "input_cached_tokens") - cached_audio
        text_out = _number(row, "output_tokens") - audio_out
        input_rate = rates.get("input_per_1m")
        output_rate = rates.get("output_per_1m")
        if (text_in or text_out) and (input_rate is None or output_rate is None):
            return Decimal(0), "text tokens"
        cost = Decimal(0)
        if text_in or text_out:
            cached_rate = rates.get("cached_input_per_1m", input_rate)
            cost += (text_in - cached_text) * input_rate + cached_text * cached_rate
            cost += text_out * output_rate
        if audio_in or audio_out:
            audio_rate = rates.get("audio_input_per_1m")
            audio_out_rate = rates.get("audio_output_per_1m")
            if audio_rate is None or audio_out_rate is None:
                return Decimal(0), "audio tokens"
            cached_audio_rate = rates.get("cached_audio_input_per_1m", audio_rate)
            cost += (audio_in - cached_audio) * audio_rate + cached_audio * cached_audio_rate
            cost += audio_out * audio_out_rate
        return cost / MILLION, ""
    if kind == "tts_usage":
        characters = _number(row, "characters_count")
        if "per_1k_characters" in rates:
            return characters * rates["per_1k_characters"] / THOUSAND, ""
        if "per_minute" in rates:
            return _number(row, "audio_duration") * rates["per_minute"] / SIXTY, ""
        return Decimal(0), "characters"
    if kind == "stt_usage":
        if "per_minute" in rates:
            return _number(row, "audio_duration") * rates["per_minute"] / SIXTY, ""
        return Decimal(0), "audio minutes"
    return Decimal(0), ""


def _has_amounts(row: Mapping[str, Any]) -> bool:
    return any(
        isinstance(value, int | float) and not isinstance(value, bool) and value
        for key, value in row.items()
        if key not in ("type", "provider", "model")
    )


def estimate_cost(
    usage: Mapping[str, Any] | None,
    snapshot: Mapping[str, Any] | None,
    *,
    avatar_seconds: float = 0.0,
    prices: Prices | None = None,
) -> CostEstimate:
    """The estimated cost of one conversation's ``usage`` (in ``CURRENCY``).

    ``snapshot`` (the persona's settings as used) names the providers when a usage row's
    provider is not one we know by name (an OpenAI-compatible server's host, say) and the
    avatar; ``avatar_seconds`` is the avatar's time in the room."""
    usage = usage if isinstance(usage, Mapping) else {}
    snapshot = snapshot if isinstance(snapshot, Mapping) else {}
    prices = price_table() if prices is None else prices
    rows = usage.get("models")
    if not isinstance(rows, list) or not rows:
        rows = _rows_from_totals(usage, snapshot)
    parts: list[tuple[str, Decimal]] = []
    unpriced: list[str] = []
    for row in rows:
        if not isinstance(row, Mapping) or row.get("type") not in _STAGE_LABELS:
            continue  # turn detection and interruption models run on the worker
        if not _has_amounts(row):
            continue
        kind = str(row["type"])
        reported = str(row.get("provider") or "").strip()
        candidates = _stage_candidates(kind, snapshot)
        model = str(row.get("model") or "") or (candidates[0][1] if candidates else "")
        providers = []
        if reported.lower() in USAGE_PROVIDER_NAMES:
            providers.append(USAGE_PROVIDER_NAMES[reported.lower()])
        providers += [provider for provider, _model in candidates]
        found = next(
            (price for provider in providers if (price := find_price(provider, model, prices))),
            None,
        )
        label = f"{_STAGE_LABELS[kind]} {providers[0] + '/' if providers else ''}{model}".strip()
        if found is None:
            unpriced.append(label)
            continue
        key, rates = found
        amount, missing = _price_row(row, rates)
        if missing:
            unpriced.append(f"{label} ({missing})")
            continue
        parts.append((f"{_STAGE_LABELS[kind]} {key}", amount))
    avatar = str(snapshot.get("avatar_provider") or "none")
    if avatar != "none" and avatar_seconds > 0:
        found = find_price(avatar, "", prices)
        if found is None or "per_minute" not in found[1]:
            unpriced.append(f"avatar {avatar}")
        else:
            minutes = Decimal(str(avatar_seconds)) / SIXTY
            parts.append((f"avatar {found[0]}", minutes * found[1]["per_minute"]))
    total = sum((amount for _label, amount in parts), Decimal(0))
    return CostEstimate(total=total, parts=tuple(parts), unpriced=tuple(unpriced))


def avatar_seconds(
    *,
    created_at: datetime,
    agent_joined_at: datetime | None,
    started_at: datetime | None,
    ended_at: datetime | None,
) -> float:
    """The avatar's time in the room: from the agent joining (or the start) to the end."""
    if ended_at is None:
        return 0.0
    since = agent_joined_at or started_at or created_at
    return max((ended_at - since).total_seconds(), 0.0)


def conversation_cost(conversation: Any, prices: Prices | None = None) -> CostEstimate:
    """``estimate_cost`` for a ``Conversation``."""
    return estimate_cost(
        conversation.usage,
        conversation.persona_snapshot,
        avatar_seconds=avatar_seconds(
            created_at=conversation.created_at,
            agent_joined_at=conversation.agent_joined_at,
            started_at=conversation.started_at,
            ended_at=conversation.ended_at,
        ),
        prices=prices,
    )


#: The persona settings ``estimate_cost`` reads from a conversation's snapshot.
SNAPSHOT_KEYS = (
    "pipeline_kind",
    "avatar_provider",
    *dict.fromkeys(
        name
        for pairs in (*_STAGE_FIELDS.values(), _REALTIME_FIELDS)
        for pair in pairs
        for name in pair
    ),
)
#: What ``row_cost`` needs from ``Conversation.objects.values()``: the usage, the times and
#: only those snapshot keys (a snapshot also holds the whole prompt).
COST_VALUES = (
    "usage",
    "created_at",
    "agent_joined_at",
    "started_at",
    "ended_at",
    *(f"persona_snapshot__{key}" for key in SNAPSHOT_KEYS),
)


def row_cost(row: Mapping[str, Any], prices: Prices) -> CostEstimate:
    """``estimate_cost`` for a row of ``Conversation.objects.values(*COST_VALUES)``."""
    return estimate_cost(
        row["usage"],
        {key: row[f"persona_snapshot__{key}"] for key in SNAPSHOT_KEYS},
        avatar_seconds=avatar_seconds(
            created_at=row["created_at"],
            agent_joined_at=row["agent_joined_at"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
        ),
        prices=prices,
    )


def persona_unpriced_models(persona: Any, prices: Prices | None = None) -> list[str]:
    """The models a persona would use that the price table does not know ("stage provider/
    model"), so that a money budget is refused for a persona whose spending cannot be counted.
    """
    prices = price_table() if prices is None else prices
    snapshot = {field.attname: getattr(persona, field.attname) for field in persona._meta.fields}
    if snapshot.get("pipeline_kind") == "realtime":
        stages = ["llm_usage"] + (["tts_usage"] if snapshot.get("realtime_use_tts") else [])
    else:
        stages = ["stt_usage", "llm_usage", "tts_usage"]
    missing = []
    for kind in stages:
        for provider, model in _stage_candidates(kind, snapshot):
            if find_price(provider, model, prices) is None:
                missing.append(f"{_STAGE_LABELS[kind]} {provider}/{model}")
    avatar = str(snapshot.get("avatar_provider") or "none")
    if avatar != "none" and find_price(avatar, "", prices) is None:
        missing.append(f"avatar {avatar}")
    return missing


def format_amount(amount: Decimal | None) -> str:
    """An amount for people: four decimals below 1 (a conversation costs cents), else two."""
    if amount is None:
        return "–"
    places = Decimal("0.0001") if abs(amount) < 1 else Decimal("0.01")
    return f"{amount.quantize(places, rounding=ROUND_HALF_UP)}"
