"""Noise cancellation is chosen per participant kind from the persona's setting."""

import pytest

pytest.importorskip("livekit.agents")

from livekit import rtc  # noqa: E402
from livekit.agents.voice.room_io import AudioInputOptions  # noqa: E402
from livekit.agents.voice.room_io.types import NoiseCancellationParams  # noqa: E402
from livekit.plugins import noise_cancellation  # noqa: E402

from agent_runner.pipeline import NoiseCancellationSelector, build_session_plan  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from tests.doubles.livekit_room import RemoteParticipantDouble  # noqa: E402

pytestmark = pytest.mark.agent

keys, vad, settings_for = shared.keys, shared.vad, shared.settings_for

STANDARD = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
SIP = rtc.ParticipantKind.PARTICIPANT_KIND_SIP
BVC_MODEL = noise_cancellation.BVC().options["modelPath"]
TELEPHONY_MODEL = noise_cancellation.BVCTelephony().options["modelPath"]


def selected_model(selector, kind):
    participant = RemoteParticipantDouble(identity=f"caller-{kind}", kind=kind)
    options = selector(NoiseCancellationParams(participant=participant, track=None))
    assert isinstance(options, rtc.NoiseCancellationOptions)
    return options.options["modelPath"]


def test_the_two_models_differ():
    assert BVC_MODEL != TELEPHONY_MODEL


def test_off_means_no_noise_cancellation(keys, vad):
    assert (
        build_session_plan(settings_for(noise_cancellation="off"), vad=vad).noise_cancellation
        is None
    )


def test_bvc_for_everyone(keys, vad):
    selector = build_session_plan(
        settings_for(noise_cancellation="bvc"), vad=vad
    ).noise_cancellation
    assert selected_model(selector, STANDARD) == BVC_MODEL
    assert selected_model(selector, SIP) == BVC_MODEL


def test_telephony_model_for_sip_callers_only(keys, vad):
    selector = build_session_plan(
        settings_for(noise_cancellation="bvc_telephony"), vad=vad
    ).noise_cancellation
    assert selected_model(selector, STANDARD) == BVC_MODEL
    assert selected_model(selector, SIP) == TELEPHONY_MODEL


def test_realtime_personas_get_noise_cancellation_too(keys, vad):
    plan = build_session_plan(
        settings_for(
            pipeline_kind="realtime",
            realtime_provider="openai",
            realtime_model="gpt-realtime",
            turn_detection="realtime_llm",
            noise_cancellation="bvc",
        ),
        vad=vad,
    )
    assert isinstance(plan.noise_cancellation, NoiseCancellationSelector)


def test_plan_gives_the_room_audio_input_options(keys, vad):
    plan = build_session_plan(settings_for(noise_cancellation="bvc_telephony"), vad=vad)
    options = plan.audio_input_options()
    assert isinstance(options, AudioInputOptions)
    assert options.noise_cancellation is plan.noise_cancellation
    assert options.auto_gain_control is False
    assert selected_model(options.noise_cancellation, SIP) == TELEPHONY_MODEL


def test_plan_without_noise_cancellation_gives_default_audio_input(keys, vad):
    options = build_session_plan(settings_for(), vad=vad).audio_input_options()
    assert options.noise_cancellation is None
    assert options == AudioInputOptions()
