"""Type or talk, on the worker side: typed chat (``lk.chat``) is answered and recorded as
typed, and the persona's interaction mode decides what the room carries and which models
the session gets."""

from __future__ import annotations

import pytest

pytest.importorskip("livekit.agents")

from asgiref.sync import sync_to_async  # noqa: E402
from livekit.agents import room_io  # noqa: E402
from livekit.agents.voice.room_io import TextInputEvent  # noqa: E402
from livekit.plugins import silero  # noqa: E402

from agent_runner import protocol  # noqa: E402
from agent_runner.credentials import missing_credentials  # noqa: E402
from agent_runner.pipeline import build_session_plan  # noqa: E402
from tests.agent_support import build_runner, new_conversation, settle  # noqa: E402
from tests.doubles.llm import DoubleLLM  # noqa: E402
from tests.factories import persona_fields  # noqa: E402
from voice_widget.models import Persona, Turn  # noqa: E402
from voice_widget.persona_settings import PersonaSettings  # noqa: E402

pytestmark = [pytest.mark.agent, pytest.mark.django_db(transaction=True)]

GREETING = "Hello! How can I help?"
SPEECH_KEYS = ("DEEPGRAM_API_KEY", "CARTESIA_API_KEY")


@sync_to_async
def lines(conversation):
    return [
        (turn.role, turn.text, turn.typed)
        for turn in Turn.objects.filter(conversation=conversation).order_by("sequence")
    ]


async def test_a_typed_question_is_answered_and_recorded_as_typed():
    conversation = await new_conversation(greeting=GREETING)
    llm = DoubleLLM(["Yes, three cargo bikes.", "We open at ten."])
    runner, room = build_runner(conversation, llm)
    await runner.start()
    await room.call_rpc(protocol.RPC_START, caller=conversation.identity)
    await settle(runner.session)

    await runner.on_text_input(runner.session, TextInputEvent(text="Do you have cargo bikes?"))
    await settle(runner.session)
    # What came another way (here: the session's own input, as speech would) is not typed.
    await runner.session.run(user_input="When do you open?")
    await runner.request_end("client_end")
    await runner.wait_finished()

    asked = [item for item in llm.requests[0].chat_ctx.items if getattr(item, "role", "") == "user"]
    assert [item.text_content for item in asked] == ["Do you have cargo bikes?"]
    assert await lines(conversation) == [
        ("agent", GREETING, False),
        ("user", "Do you have cargo bikes?", True),
        ("agent", "Yes, three cargo bikes.", False),
        ("user", "When do you open?", False),
        ("agent", "We open at ten.", False),
    ]


@pytest.mark.parametrize(
    ("mode", "audio_in", "audio_out", "text_in"),
    [
        ("voice_text", True, True, True),
        ("text", False, False, True),
        ("voice", True, True, False),
    ],
)
async def test_the_room_carries_what_the_mode_allows(mode, audio_in, audio_out, text_in):
    conversation = await new_conversation(interaction_mode=mode)
    runner, _room = build_runner(conversation, DoubleLLM())
    options = runner.room_options()
    assert (options.get_audio_input_options() is not None) is audio_in
    assert (options.get_audio_output_options() is not None) is audio_out
    text_input = options.get_text_input_options()
    assert (text_input is not None) is text_in
    if text_in:
        assert isinstance(text_input, room_io.TextInputOptions)
        assert text_input.text_input_cb == runner.on_text_input


def test_a_type_only_persona_gets_the_language_model_alone(monkeypatch):
    for name in SPEECH_KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")
    persona = Persona(**persona_fields(interaction_mode="text"))
    persona.full_clean(validate_unique=False, validate_constraints=False)
    snapshot = PersonaSettings.from_persona(persona)

    assert missing_credentials(snapshot) == []
    plan = build_session_plan(snapshot, vad=silero.VAD.load())
    assert plan.text_only
    assert plan.can_say  # nothing is spoken: say() writes the greeting
    assert "stt" not in plan.session_kwargs and "tts" not in plan.session_kwargs
    assert plan.session_kwargs["vad"] is None
    assert plan.avatar is None

    talking = PersonaSettings.from_persona(Persona(**persona_fields(interaction_mode="voice_text")))
    assert set(missing_credentials(talking)) == set(SPEECH_KEYS)
