"""TranscriptRecorder when the database is away for a moment (or longer than the bound)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.db import OperationalError, ProgrammingError

from agent_runner import recorder as recorder_module
from agent_runner.recorder import TranscriptRecorder
from tests.agent_support import new_conversation, transcript
from voice_widget.models import Turn

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(recorder_module, "RETRY_FIRST_DELAY", 0.01)
    monkeypatch.setattr(recorder_module, "RETRY_MAX_DELAY", 0.02)


def patch_inserts(monkeypatch, fail):
    """Turn inserts fail with what ``fail(attempt, sequences)`` returns (None: they run)."""
    real = Turn.objects.abulk_create
    attempts: list[list[int]] = []

    async def abulk_create(turns, *args, **kwargs):
        attempts.append([turn.sequence for turn in turns])
        if error := fail(len(attempts), attempts[-1]):
            raise error
        return await real(turns, *args, **kwargs)

    monkeypatch.setattr(Turn.objects, "abulk_create", abulk_create)
    return attempts


async def until(condition, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_database_blip_loses_no_line_and_keeps_the_order(monkeypatch, caplog):
    conversation = await new_conversation()
    attempts = patch_inserts(
        monkeypatch, lambda attempt, _: OperationalError("server closed") if attempt <= 3 else None
    )
    recorder = await TranscriptRecorder.for_conversation(conversation.pk)

    for number in range(1, 4):
        recorder.add("user" if number % 2 else "agent", f"line {number}")
    await until(lambda: len(attempts) >= 2)  # the database is away while more lines come
    for number in range(4, 8):
        recorder.add("user" if number % 2 else "agent", f"line {number}")
    await recorder.aclose()

    assert await transcript(conversation) == [
        (number, "user" if number % 2 else "agent", f"line {number}") for number in range(1, 8)
    ]
    assert (recorder.saved, recorder.failed) == (7, 0)
    assert attempts[:4] == [[1, 2, 3]] * 4  # later lines waited behind the failed batch
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_batch_saved_although_its_answer_was_lost_is_not_saved_twice(monkeypatch):
    conversation = await new_conversation()
    real = Turn.objects.abulk_create
    attempts = []

    async def saved_but_answer_lost(turns, *args, **kwargs):
        attempts.append(kwargs)
        result = await real(turns, *args, **kwargs)
        if len(attempts) == 1:
            for turn in turns:
                turn.pk = None
            raise OperationalError("connection lost after commit")
        return result

    monkeypatch.setattr(Turn.objects, "abulk_create", saved_but_answer_lost)
    recorder = await TranscriptRecorder.for_conversation(conversation.pk)
    recorder.add("agent", "Hello!")
    recorder.add("user", "Hi.")
    await recorder.aclose()

    assert await transcript(conversation) == [(1, "agent", "Hello!"), (2, "user", "Hi.")]
    assert (recorder.saved, recorder.failed) == (2, 0)
    assert len(attempts) == 3  # the lost answer, the duplicate, and the one that keeps them


async def test_an_outage_longer_than_the_bound_drops_the_batch_with_one_error(monkeypatch, caplog):
    monkeypatch.setattr(recorder_module, "RETRY_FOR_SECONDS", 0.1)
    conversation = await new_conversation()
    attempts = patch_inserts(
        monkeypatch,
        lambda _, sequences: OperationalError("the database is away") if 1 in sequences else None,
    )
    recorder = await TranscriptRecorder.for_conversation(conversation.pk)

    recorder.add("agent", "Hello!")
    recorder.add("user", "Hi.")
    await until(lambda: attempts)
    recorder.add("agent", "How can I help?")
    await recorder.aclose()

    assert await transcript(conversation) == [(3, "agent", "How can I help?")]
    assert (recorder.saved, recorder.failed) == (1, 2)
    assert len(attempts) > 2  # retried before giving up
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(conversation.pk) in errors[0].getMessage()
    assert "2 transcript lines" in errors[0].getMessage()


async def test_errors_that_are_not_an_outage_are_not_retried(monkeypatch, caplog):
    conversation = await new_conversation()
    attempts = patch_inserts(monkeypatch, lambda *_: ProgrammingError("no such table"))
    recorder = await TranscriptRecorder.for_conversation(conversation.pk)
    recorder.add("agent", "Hello!")
    await recorder.aclose()

    assert len(attempts) == 1 and (recorder.saved, recorder.failed) == (0, 1)
    assert len([record for record in caplog.records if record.levelno >= logging.ERROR]) == 1


def _realtime_metrics(response_id: str, ttft: float):
    from livekit.agents.metrics import RealtimeModelMetrics
    from livekit.agents.voice.events import MetricsCollectedEvent

    return MetricsCollectedEvent(
        metrics=RealtimeModelMetrics(
            request_id=response_id,
            timestamp=0.0,
            ttft=ttft,
            input_token_details=RealtimeModelMetrics.InputTokenDetails(),
            output_token_details=RealtimeModelMetrics.OutputTokenDetails(),
        )
    )


def _message(role: str, text: str, **metrics):
    from livekit.agents.llm import ChatMessage

    return ChatMessage(role=role, content=[text], metrics=metrics)


@pytest.mark.parametrize("metrics_first", [True, False])
async def test_a_realtime_answer_gets_its_time_to_first_audio_whenever_its_metrics_come(
    metrics_first,
):
    conversation = await new_conversation()
    recorder = await TranscriptRecorder.for_conversation(conversation.pk)
    question = _message("user", "Open today?", end_of_turn_delay=0.4, transcription_delay=0.3)
    answer = _message("assistant", "Until six.", e2e_latency=0.9, provider_request_ids=["resp_2"])

    recorder.add_chat_message(question)
    if metrics_first:
        recorder.add_model_metrics(_realtime_metrics("resp_1", 0.5))  # another response
        recorder.add_model_metrics(_realtime_metrics("resp_2", 0.35))
        recorder.add_chat_message(answer)
    else:
        recorder.add_chat_message(answer)
        await until(lambda: recorder.saved == 2)  # the line is in the database already
        recorder.add_model_metrics(_realtime_metrics("resp_2", 0.35))
    await recorder.aclose()

    rows = [
        row
        async for row in Turn.objects.filter(conversation=conversation)
        .order_by("sequence")
        .values_list("role", *Turn.LATENCY_FIELDS)
    ]
    assert rows == [
        ("user", None, None, None, None, None),
        ("agent", 0.4, 0.3, None, 0.35, 0.9),
    ]


async def test_the_visitors_delays_go_only_on_the_agent_line_that_answers_them():
    conversation = await new_conversation()
    recorder = await TranscriptRecorder.for_conversation(conversation.pk)
    recorder.add_chat_message(_message("assistant", "Hello!", tts_node_ttfb=0.2))
    recorder.add_chat_message(_message("user", "Hi", end_of_turn_delay=0.5))
    recorder.add_chat_message(
        _message("assistant", "How can I help?", llm_node_ttft=0.3, tts_node_ttfb=0.1)
    )
    recorder.add_chat_message(_message("assistant", "Anything else?", llm_node_ttft=-1))
    await recorder.aclose()

    rows = [
        row
        async for row in Turn.objects.filter(conversation=conversation, role="agent")
        .order_by("sequence")
        .values_list("eou_delay", "llm_ttft", "tts_ttfb")
    ]
    assert rows == [(None, None, 0.2), (0.5, 0.3, 0.1), (None, None, None)]
