"""A provider outage in a real ``AgentSession``: the real livekit openai plugins against an
``OpenAIServerDouble`` made to fail. The visitor is told at the first failed turn (spoken,
or only as a caption when speech synthesis is what fails), and the conversation ends
``failed``/``error`` with a detail naming the stage and provider after
``PROVIDER_FAILURES_TO_END`` failed turns, each after ``PROVIDER_MAX_RETRY`` retries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit.agents import AgentSession
from livekit.agents.testing import fake_job_context
from livekit.plugins import silero

from agent_runner import notices, protocol
from agent_runner.conversation import ConversationRunner
from agent_runner.pipeline import build_session_plan
from tests.agent_support import new_conversation, reload, settle, transcript
from tests.doubles.audio import CaptionOutput, InstantAudioOutput
from tests.doubles.openai_server import OPENAI_PERSONA_FIELDS, OpenAIServerDouble
from tests.doubles.room import DoubleRoom
from voice_widget.models import ConversationStatus

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

GREETING = "Hallo, hier ist Ben."
BUDGET = {
    "PROVIDER_MAX_RETRY": 2,
    "PROVIDER_RETRY_INTERVAL": 0.2,
    "PROVIDER_TIMEOUT": 5.0,
    "PROVIDER_FAILURES_TO_END": 2,
}


@pytest.fixture
def openai_env(settings, monkeypatch):
    settings.VOICE_WIDGET = {**getattr(settings, "VOICE_WIDGET", {}), **BUDGET}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


async def start_runner(
    server: OpenAIServerDouble, *, with_report: bool = False
) -> tuple[ConversationRunner, DoubleRoom, list]:
    conversation = await new_conversation(
        language="de-DE", greeting=GREETING, **OPENAI_PERSONA_FIELDS
    )
    plan = build_session_plan(conversation.persona_settings, vad=silero.VAD.load())
    session = AgentSession(**plan.session_kwargs)
    session.output.audio = InstantAudioOutput()
    captions = CaptionOutput()
    session.output.transcription = captions
    room = DoubleRoom(visitor=conversation.identity)
    runner = ConversationRunner(
        conversation=conversation,
        session=session,
        signals=protocol.RoomSignals(room),
        room=room,
        start_immediately=True,
        can_say=plan.can_say,
        session_report=(lambda: session_report(session)) if with_report else None,
    )
    await runner.start()
    await settle(session)
    assert server.spoken_texts == [GREETING]
    return runner, room, captions.lines


def spoken(server: OpenAIServerDouble) -> str:
    """Everything the agent said (the TTS plugin asks for one sentence at a time)."""
    return " ".join(server.spoken_texts)


async def wait_for(condition, timeout: float = 15.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def session_report(session: AgentSession) -> Any:
    """What the worker passes as ``session_report``: the job's ``make_session_report``
    (here of livekit-agents' fake job context, entered only for the report, as the job's
    context makes the HTTP clients check the room)."""
    with fake_job_context(room=DoubleRoom()) as job:
        return job.make_session_report(session)


async def test_a_language_model_outage_is_told_at_once_and_ends_the_conversation(
    openai_env, monkeypatch
):
    async with OpenAIServerDouble(default_reply="Wir haben bis sechs offen.") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        runner, room, captions = await start_runner(server, with_report=True)
        conversation = runner.conversation
        server.fail("llm", status=503, message="The model is overloaded.")

        runner.session.generate_reply(user_input="Haben Sie heute offen?")
        # The first failed turn (three tries: the first and PROVIDER_MAX_RETRY retries):
        # the visitor hears, in German, that there is a problem; the conversation goes on.
        await wait_for(lambda: notices.PROBLEM["de"] in spoken(server))
        assert server.refused == ["llm"] * 3
        assert notices.PROBLEM["de"] in captions
        assert (await reload(conversation)).status == ConversationStatus.ACTIVE

        # The provider stays down: the second failed turn ends it, with the last words.
        runner.session.generate_reply(user_input="Hallo?")
        assert await asyncio.wait_for(runner.wait_finished(), 15) == "error"

    assert server.refused == ["llm"] * 6
    assert spoken(server) == f"{GREETING} {notices.PROBLEM['de']} {notices.GIVING_UP['de']}"
    ended = await reload(conversation)
    assert (ended.status, ended.end_reason) == (ConversationStatus.FAILED, "error")
    assert ended.end_detail.startswith("The language model (openai gpt-4o-mini) failed 2 times")
    assert ended.end_detail.endswith("answered since: The model is overloaded. (HTTP 503)")
    assert room.local_participant.attributes[protocol.ATTR_END_REASON] == "error"
    # The usage comes from livekit-agents' session report: every failed try was an error event.
    assert ended.usage["errors"] == {"llm": 6}
    assert ended.usage["user_turns"] == 2 and ended.usage["session_seconds"] > 0
    assert ended.usage["close_reason"] == "CR_USER_INITIATED"  # closed by the runner
    assert ended.usage["tts_characters"] >= len(GREETING)
    assert [line[1:] for line in await transcript(conversation)] == [
        ("agent", GREETING),
        ("user", "Haben Sie heute offen?"),
        ("agent", notices.PROBLEM["de"]),
        ("user", "Hallo?"),
        ("agent", notices.GIVING_UP["de"]),
    ]


async def test_a_speech_synthesis_outage_is_told_as_a_caption(openai_env, monkeypatch):
    async with OpenAIServerDouble(default_reply="Wir haben bis sechs offen.") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        runner, _room, captions = await start_runner(server)
        conversation = runner.conversation
        server.fail("tts", status=500)

        runner.session.generate_reply(user_input="Haben Sie heute offen?")
        # Speech synthesis is what fails: the notice is shown, not spoken (no TTS request).
        await wait_for(lambda: notices.PROBLEM["de"] in captions)
        assert server.refused == ["tts"] * 3
        assert server.spoken_texts == [GREETING]

        runner.session.generate_reply(user_input="Hallo?")
        assert await asyncio.wait_for(runner.wait_finished(), 15) == "error"

    assert server.refused == ["tts"] * 6
    assert notices.GIVING_UP["de"] in captions
    ended = await reload(conversation)
    assert ended.status == ConversationStatus.FAILED
    assert ended.end_detail.startswith("Speech synthesis (openai gpt-4o-mini-tts) failed 2 times")


async def test_a_provider_that_recovers_resets_the_count(openai_env, monkeypatch):
    async with OpenAIServerDouble(default_reply="Wir haben bis sechs offen.") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        runner, _room, _captions = await start_runner(server)
        server.fail("llm")
        runner.session.generate_reply(user_input="Haben Sie heute offen?")
        await wait_for(lambda: notices.PROBLEM["de"] in spoken(server))
        await settle(runner.session)

        server.recover()
        await runner.session.run(user_input="Haben Sie heute offen?")
        server.fail("llm")
        runner.session.generate_reply(user_input="Und morgen?")
        await wait_for(lambda: spoken(server).count(notices.PROBLEM["de"]) == 2)
        await settle(runner.session)

        # One failed turn after an answer is a first failure again: still talking.
        assert not runner.finished
        assert (await reload(runner.conversation)).status == ConversationStatus.ACTIVE
        await runner.request_end("client_end")
    assert (await reload(runner.conversation)).end_reason == "error"


async def test_a_visitor_who_leaves_after_a_failed_turn_is_not_talked_to(
    openai_env, monkeypatch, settings
):
    # No resume window: the visitor's leaving ends the conversation at once.
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "RESUME_WINDOW": 0}
    async with OpenAIServerDouble() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        runner, room, _captions = await start_runner(server)
        server.fail("llm")
        runner.session.generate_reply(user_input="Haben Sie heute offen?")
        await wait_for(lambda: notices.PROBLEM["de"] in spoken(server))
        await settle(runner.session)

        room.leave(runner.conversation.identity)
        assert await asyncio.wait_for(runner.wait_finished(), 15) == "error"

    # The failure is why it ended (recorded as such), but nobody is left to hear the last words.
    assert notices.GIVING_UP["de"] not in spoken(server)
    ended = await reload(runner.conversation)
    assert ended.end_detail.startswith("The language model (openai gpt-4o-mini) failed once")
