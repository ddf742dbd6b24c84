"""Latency per turn, kept: a visitor's spoken question (espeak-ng, in real time) goes through a
real ``AgentSession`` built by the real pipeline (Silero VAD, and the OpenAI plugins' speech
recognition, language model and speech synthesis against ``OpenAIServerDouble``). The worker's
recorder keeps livekit-agents' figures on the answer, and admin shows them on the transcript
and in the persona's latency report."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice import io
from livekit.plugins import silero

from agent_runner import protocol
from agent_runner.conversation import ConversationRunner
from agent_runner.pipeline import build_session_plan
from agent_runner.protocol import RoomSignals
from tests.agent_support import new_conversation, settle
from tests.doubles.audio import InstantAudioOutput
from tests.doubles.openai_server import OPENAI_PERSONA_FIELDS, OpenAIServerDouble
from tests.doubles.room import DoubleRoom
from tests.e2e.speech import has_espeak, speech_samples
from voice_widget.latency import format_seconds
from voice_widget.models import Turn

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

GREETING = "Hello, this is Ben."
QUESTION = "When are you open on Saturday?"
ANSWER = "We are open from nine to one on Saturdays."
RATE = 48000
FRAME = RATE // 100  # 10 ms, as a room delivers them


class SpokenAudioInput(io.AudioInput):
    """A visitor's microphone (a test double): silence in real time, and a sentence when the
    test makes the visitor speak."""

    def __init__(self) -> None:
        super().__init__(label="SpokenAudioInput")
        self._queued: list[rtc.AudioFrame] = []
        self._silence = rtc.AudioFrame(b"\x00\x00" * FRAME, RATE, 1, FRAME)
        self._due: float | None = None

    def speak(self, samples: np.ndarray) -> None:
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        pcm = np.pad(pcm, (0, -pcm.size % FRAME))
        self._queued.extend(
            rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), RATE, 1, FRAME)
            for i in range(0, pcm.size, FRAME)
        )

    async def __anext__(self) -> rtc.AudioFrame:
        loop = asyncio.get_running_loop()
        self._due = loop.time() if self._due is None else self._due + 0.01
        if (wait := self._due - loop.time()) > 0:
            await asyncio.sleep(wait)
        return self._queued.pop(0) if self._queued else self._silence


@pytest.fixture
def espeak():
    if reason := has_espeak():
        pytest.skip(reason)


async def _answered(session: AgentSession, text: str, timeout: float) -> None:
    async def wait() -> None:
        while not any(
            m.role == "assistant" and m.text_content == text for m in session.history.messages()
        ):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)


async def test_a_spoken_answer_keeps_its_latency_and_admin_shows_it(
    espeak, monkeypatch, admin_client
):
    async with OpenAIServerDouble(transcript=QUESTION, default_reply=ANSWER) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-double")
        conversation = await new_conversation(
            **OPENAI_PERSONA_FIELDS, greeting=GREETING, noise_cancellation="off"
        )
        plan = build_session_plan(conversation.persona_snapshot, vad=silero.VAD.load())
        session = AgentSession(**plan.session_kwargs)
        microphone = SpokenAudioInput()
        session.input.audio = microphone
        session.output.audio = InstantAudioOutput()
        room = DoubleRoom(visitor=conversation.identity)
        runner = ConversationRunner(
            conversation=conversation, session=session, signals=RoomSignals(room), room=room
        )
        await runner.start()
        assert await room.call_rpc(protocol.RPC_START, caller=conversation.identity) == {"ok": True}
        await settle(session, timeout=30)

        microphone.speak(speech_samples(QUESTION, sample_rate=RATE))
        await _answered(session, ANSWER, timeout=60)
        await runner.request_end("client_end")
        assert await asyncio.wait_for(runner.wait_finished(), 30) == "client_end"

    greeting, question, answer = await sync_to_async(list)(
        Turn.objects.filter(conversation=conversation).order_by("sequence")
    )
    assert [(t.role, t.text) for t in (greeting, question, answer)] == [
        ("agent", GREETING),
        ("user", QUESTION),
        ("agent", ANSWER),
    ]
    figures = {name: getattr(answer, name) for name in Turn.LATENCY_FIELDS}
    assert all(value is not None and value >= 0 for value in figures.values()), figures
    # From the end of the question to the answer's first sound: more than each stage after
    # the end of speech (the VAD's silence, the model's first token).
    assert answer.e2e_latency > answer.eou_delay
    assert answer.e2e_latency > answer.llm_ttft
    # The visitor's line carries none; the greeting (said verbatim, answering nobody) has
    # only its speech synthesis.
    assert [getattr(question, name) for name in Turn.LATENCY_FIELDS] == [None] * 5
    assert greeting.tts_ttfb is not None
    assert (greeting.llm_ttft, greeting.e2e_latency, greeting.eou_delay) == (None, None, None)

    change_page = await sync_to_async(admin_client.get)(
        reverse("admin:voice_widget_conversation_change", args=[conversation.pk])
    )
    html = change_page.content.decode()
    assert change_page.status_code == 200
    for label, name in [
        ("end of turn", "eou_delay"),
        ("transcript", "transcription_delay"),
        ("LLM", "llm_ttft"),
        ("first audio", "tts_ttfb"),
        ("end to end", "e2e_latency"),
    ]:
        assert f"{label} {format_seconds(figures[name])}</span>" in html, label

    report = await sync_to_async(admin_client.get)(
        reverse("admin:voice_widget_persona_latency", args=[conversation.persona_id]),
        {"days": 1},
    )
    assert report.status_code == 200
    # One answer: its value is both the median and the 95th percentile.
    e2e = format_seconds(answer.e2e_latency)
    assert f"<td>1</td>\n        <td>{e2e}</td>\n        <td>{e2e}</td>" in report.content.decode()
