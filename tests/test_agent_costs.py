"""The seam between the worker's usage record and the web side's cost estimate: what the real
livekit-plugins-openai client reports, saved by the worker, is priced by voice_widget.costs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from livekit.plugins import openai

from tests.agent_support import build_runner, new_conversation, reload, settle
from tests.doubles.audio import DoubleTTS
from tests.doubles.openai_server import ChatCompletionsServerDouble
from voice_widget.costs import conversation_cost

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]


async def test_the_usage_the_worker_records_is_priced_per_model(settings):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "PRICES": {
            # The plugin reports the server's host as the provider: the persona's provider
            # (openai_compatible) finds the price.
            "openai_compatible/local-model": {"input_per_1m": "1000", "output_per_1m": "2000"},
            # The test double of the TTS stage, under the persona's TTS provider.
            "cartesia/double-tts": {"per_1k_characters": "1"},
        },
    }
    async with ChatCompletionsServerDouble(["We are open until six."]) as server:
        conversation = await new_conversation(
            {"llm_provider": "openai_compatible", "llm_base_url": server.base_url}
        )
        llm = openai.LLM(model="local-model", base_url=server.base_url, api_key="test")
        runner, _room = build_runner(conversation, llm, tts=DoubleTTS(), start_immediately=True)
        await runner.start()
        await settle(runner.session)
        await runner.session.run(user_input="How long are you open today?")
        await settle(runner.session)
        await runner.request_end("client_end")

    saved = await reload(conversation)
    usage = saved.usage
    estimate = await sync_to_async(conversation_cost)(saved)
    # 42 input tokens × 1000/1M + 7 output tokens × 2000/1M, and the characters spoken × 1/1K.
    llm_cost = Decimal(42) * 1000 / 1_000_000 + Decimal(7) * 2000 / 1_000_000
    tts_cost = Decimal(usage["tts_characters"]) / 1000
    assert usage["llm_input_tokens"] == 42 and usage["tts_characters"] > 0
    assert dict(estimate.parts) == {
        "LLM openai_compatible/local-model": llm_cost,
        "TTS cartesia/double-tts": tts_cost,
    }
    assert estimate.complete and estimate.total == llm_cost + tts_cost
