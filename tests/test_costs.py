"""Cost estimates: the price table, its check, and the arithmetic against hand-computed sums."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import make_conversation, make_persona, persona_fields
from voice_widget.costs import (
    conversation_cost,
    estimate_cost,
    find_price,
    format_amount,
    price_table,
)
from voice_widget.models import BudgetUnit, Persona
from voice_widget.providers import DEFAULT_PRICES

# Round prices, so that the sums below can be checked by hand.
PRICES = {
    "openai/gpt-4o-mini": {"input_per_1m": 1, "cached_input_per_1m": "0.5", "output_per_1m": 4},
    "cartesia/sonic-2": {"per_1k_characters": "0.05"},
    "deepgram/nova-3": {"per_minute": "0.01"},
    "bey": {"per_minute": "0.20"},
    "openai/gpt-realtime": {
        "input_per_1m": 4,
        "cached_input_per_1m": "0.4",
        "output_per_1m": 16,
        "audio_input_per_1m": 32,
        "cached_audio_input_per_1m": "0.4",
        "audio_output_per_1m": 64,
    },
}

PIPELINE_SNAPSHOT = {
    "pipeline_kind": "pipeline",
    "stt_provider": "deepgram",
    "stt_model": "nova-3",
    "llm_provider": "openai",
    "llm_model": "gpt-4o-mini",
    "tts_provider": "cartesia",
    "tts_model": "sonic-2",
    "avatar_provider": "bey",
}

# What agent_runner.usage.summarize_usage writes: totals, and one row per model as
# livekit-agents reports it (the OpenAI plugin names its host as the provider).
PIPELINE_USAGE = {
    "llm_input_tokens": 12000,
    "llm_cached_input_tokens": 4000,
    "llm_output_tokens": 1500,
    "tts_characters": 2000,
    "tts_audio_seconds": 95.5,
    "stt_audio_seconds": 180.0,
    "models": [
        {
            "type": "llm_usage",
            "provider": "api.openai.com",
            "model": "gpt-4o-mini",
            "input_tokens": 12000,
            "input_cached_tokens": 4000,
            "output_tokens": 1500,
        },
        {
            "type": "tts_usage",
            "provider": "Cartesia",
            "model": "sonic-2",
            "characters_count": 2000,
            "audio_duration": 95.5,
        },
        {"type": "stt_usage", "provider": "Deepgram", "model": "nova-3", "audio_duration": 180.0},
        {"type": "eot_usage", "provider": "livekit", "model": "turn-detector", "total_requests": 9},
    ],
}


@pytest.fixture
def prices():
    """Exactly the table above (no list prices beside it)."""
    return {
        key: {name: Decimal(str(value)) for name, value in rates.items()}
        for key, rates in PRICES.items()
    }


def test_pipeline_cost_matches_the_hand_computed_sum(prices):
    # LLM: 8,000 uncached × $1/1M + 4,000 cached × $0.50/1M + 1,500 out × $4/1M
    #      = 0.008 + 0.002 + 0.006 = 0.016
    # TTS: 2,000 characters × $0.05/1K = 0.10
    # STT: 180 s = 3 minutes × $0.01 = 0.03
    # Avatar: 240 s = 4 minutes × $0.20 = 0.80
    # Total: 0.016 + 0.10 + 0.03 + 0.80 = 0.946
    estimate = estimate_cost(PIPELINE_USAGE, PIPELINE_SNAPSHOT, avatar_seconds=240, prices=prices)
    assert estimate.total == Decimal("0.946")
    assert dict(estimate.parts) == {
        "LLM openai/gpt-4o-mini": Decimal("0.016"),
        "TTS cartesia/sonic-2": Decimal("0.10"),
        "STT deepgram/nova-3": Decimal("0.03"),
        "avatar bey": Decimal("0.80"),
    }
    assert estimate.complete


def test_realtime_audio_and_text_tokens_are_priced_apart(prices):
    usage = {
        "models": [
            {
                "type": "llm_usage",
                "provider": "api.openai.com",
                "model": "gpt-realtime",
                "input_tokens": 10000,
                "input_audio_tokens": 8000,
                "input_cached_tokens": 3000,
                "input_cached_audio_tokens": 2000,
                "output_tokens": 5000,
                "output_audio_tokens": 4000,
            }
        ]
    }
    snapshot = {
        "pipeline_kind": "realtime",
        "realtime_provider": "openai",
        "avatar_provider": "none",
    }
    # text in: 1,000 uncached × 4 + 1,000 cached × 0.4 = 4,400; text out: 1,000 × 16 = 16,000
    # audio in: 6,000 × 32 + 2,000 cached × 0.4 = 192,800; audio out: 4,000 × 64 = 256,000
    # (469,200) / 1M = 0.4692
    assert estimate_cost(usage, snapshot, prices=prices).total == Decimal("0.4692")


def test_usage_without_model_rows_is_priced_on_the_personas_models(prices):
    usage = {key: value for key, value in PIPELINE_USAGE.items() if key != "models"}
    estimate = estimate_cost(usage, PIPELINE_SNAPSHOT, prices=prices)
    assert estimate.total == Decimal("0.146")  # the pipeline sum above, without the avatar


def test_a_fallback_model_is_priced_as_itself(prices):
    usage = {
        "models": [
            {
                "type": "tts_usage",
                "provider": "Cartesia",
                "model": "sonic-2",
                "characters_count": 1000,
            },
            {"type": "stt_usage", "provider": "Deepgram", "model": "nova-3", "audio_duration": 60},
            {
                "type": "stt_usage",
                "provider": "api.openai.com",
                "model": "gpt-4o-mini-transcribe",
                "audio_duration": 60,
            },
        ]
    }
    estimate = estimate_cost(usage, {**PIPELINE_SNAPSHOT, "avatar_provider": "none"}, prices=prices)
    # The site's table has no gpt-4o-mini-transcribe: the estimate says so, not a silent zero.
    assert estimate.total == Decimal("0.06")
    assert estimate.unpriced == ("STT openai/gpt-4o-mini-transcribe",)
    assert not estimate.complete


def test_a_self_hosted_model_is_found_under_the_personas_provider(settings):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "PRICES": {"openai_compatible": {"input_per_1m": 0, "output_per_1m": 0}},
    }
    usage = {
        "models": [
            {
                "type": "llm_usage",
                "provider": "127.0.0.1:11434",
                "model": "llama3.1",
                "input_tokens": 500,
                "output_tokens": 50,
            }
        ]
    }
    snapshot = {"llm_provider": "openai_compatible", "llm_model": "llama3.1"}
    estimate = estimate_cost(usage, snapshot)
    assert estimate.total == 0 and estimate.complete


def test_livekit_inference_azure_and_dated_models_find_their_list_price():
    table = price_table()
    assert find_price("livekit", "deepgram/nova-3", table)[0] == "deepgram/nova-3"
    assert find_price("azure_openai", "gpt-4o-mini", table)[0] == "openai/gpt-4o-mini"
    assert find_price("openai", "gpt-4o-mini-2024-07-18", table)[0] == "openai/gpt-4o-mini"
    assert find_price("openai_compatible", "llama3.1", table) is None


def test_site_prices_replace_or_remove_list_prices(settings):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "PRICES": {"cartesia/sonic-2": {"per_1k_characters": "0.02"}, "deepgram/nova-3": None},
    }
    table = price_table()
    assert table["cartesia/sonic-2"] == {"per_1k_characters": Decimal("0.02")}
    assert "deepgram/nova-3" not in table
    assert table["openai/gpt-4o-mini"] == {
        name: Decimal(value) for name, value in DEFAULT_PRICES["openai/gpt-4o-mini"].items()
    }


def test_the_default_persona_has_list_prices_for_every_model():
    persona = Persona(**persona_fields())
    usage = dict(PIPELINE_USAGE)
    snapshot = persona.snapshot()
    estimate = estimate_cost(usage, snapshot)
    assert estimate.complete and estimate.total > 0


@pytest.mark.django_db
def test_conversation_cost_counts_the_avatar_from_the_agent_joining(prices):
    persona = make_persona(avatar_provider="bey", avatar_id="avatar-1")
    joined = timezone.now() - timedelta(minutes=10)
    conversation = make_conversation(
        persona,
        usage={},
        agent_joined_at=joined,
        started_at=joined + timedelta(minutes=5),
        ended_at=joined + timedelta(minutes=10),
    )
    # The live preview's 5 minutes count: 10 minutes × $0.20.
    assert conversation_cost(conversation, prices).total == Decimal("2.00")


@pytest.mark.parametrize(
    ("prices", "problem"),
    [
        (["gpt"], "must be a dict"),
        ({"openai/gpt-4o-mini": {"input_per_1m": "cheap"}}, "is not a price"),
        ({"openai/gpt-4o-mini": {"input_per_1m": -1}}, "is not a price"),
        ({"openai/gpt-4o-mini": {"per_token": 1}}, "unknown rate 'per_token'"),
        ({"openai/gpt-4o-mini": "0.15"}, "must map rate names"),
    ],
)
def test_an_invalid_price_table_is_a_system_check_error_with_a_hint(settings, prices, problem):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "PRICES": prices}
    errors = [e for e in run_checks() if e.id == "voice_widget.E020"]
    assert len(errors) == 1 and problem in errors[0].msg
    assert "input_per_1m" in errors[0].hint


def test_an_invalid_currency_is_a_system_check_error(settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "CURRENCY": 42}
    assert [e.id for e in run_checks() if e.id.startswith("voice_widget.E02")] == [
        "voice_widget.E021"
    ]


def test_the_shipped_settings_pass_the_checks():
    assert not [e for e in run_checks() if e.id in ("voice_widget.E020", "voice_widget.E021")]


def test_amounts_show_cents_of_cents_below_one():
    assert format_amount(Decimal("0.0123456")) == "0.0123"
    assert format_amount(Decimal("12.345")) == "12.35"
    assert format_amount(None) == "–"


@pytest.mark.django_db
def test_a_money_budget_needs_a_price_for_every_model(settings):
    persona = Persona(
        **persona_fields(
            llm_provider="openai_compatible",
            llm_model="llama3.1",
            llm_base_url="http://127.0.0.1:11434/v1",
            daily_budget=Decimal("5"),
        )
    )
    with pytest.raises(ValidationError) as info:
        persona.full_clean()
    assert "LLM openai_compatible/llama3.1" in str(info.value.message_dict["daily_budget"])
    persona.daily_budget_unit = BudgetUnit.MINUTES
    persona.full_clean()  # minutes need no prices
    persona.daily_budget_unit = BudgetUnit.MONEY
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "PRICES": {"openai_compatible": {"input_per_1m": 0, "output_per_1m": 0}},
    }
    persona.full_clean()


def test_a_negative_budget_is_refused():
    persona = Persona(**persona_fields(daily_budget=Decimal("-1")))
    with pytest.raises(ValidationError) as info:
        persona.full_clean(validate_unique=False)
    assert "daily_budget" in info.value.message_dict
