"""``OpenAIServerDouble`` speaks the OpenAI HTTP API as the real livekit openai plugin calls it.

The STT, TTS and LLM are built by ``agent_runner.pipeline`` for a persona with OpenAI
providers; like the worker in the end-to-end tests, they find the double through
``OPENAI_BASE_URL`` (the pipeline passes no base URL for OpenAI). The speech is espeak-ng's.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp
import numpy as np
import pytest

pytest.importorskip("livekit.agents")

from livekit import rtc  # noqa: E402
from livekit.agents import APIStatusError  # noqa: E402
from livekit.agents import llm as lk_llm  # noqa: E402
from livekit.plugins import openai  # noqa: E402

from agent_runner.function_tools import build_function_tools  # noqa: E402
from agent_runner.pipeline import build_session_plan  # noqa: E402
from tests import test_pipeline as shared  # noqa: E402
from tests.doubles.openai_server import (  # noqa: E402
    DEFAULT_TRANSCRIPT,
    OPENAI_PERSONA_FIELDS,
    ChatCompletionsServerDouble,
    OpenAIServerDouble,
)
from tests.doubles.wav import pcm16_rms, read_wav, wav_info  # noqa: E402
from tests.e2e.speech import has_espeak, speak_to_wav  # noqa: E402
from tests.e2e.threaded import serve_in_thread  # noqa: E402
from voice_widget.tools import END_CONVERSATION  # noqa: E402

pytestmark = pytest.mark.agent

keys, vad, settings_for = shared.keys, shared.vad, shared.settings_for


@pytest.fixture
def espeak():
    if reason := has_espeak():
        pytest.skip(reason)


@pytest.fixture
async def server():
    async with OpenAIServerDouble() as double:
        yield double


@pytest.fixture
def plan(keys, vad, server, monkeypatch):
    """The persona's real plugin objects, pointed at the double as the worker's would be."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    return build_session_plan(settings_for(**OPENAI_PERSONA_FIELDS), vad=vad).session_kwargs


def frames_of(samples: np.ndarray, rate: int) -> list[rtc.AudioFrame]:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    step = rate // 100  # 10 ms frames, as the room delivers them
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), rate, 1, len(pcm[i : i + step]))
        for i in range(0, len(pcm), step)
    ]


def test_speak_to_wav_is_lead_silence_speech_once_and_long_tail(espeak, tmp_path):
    path = speak_to_wav("Hello there", tmp_path / "hello.wav", lead_silence=0.5, tail_silence=3)
    samples, rate, channels = read_wav(path.read_bytes())
    assert (rate, channels) == (48000, 1)
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    assert 0.5 <= loud[0] / rate < 0.7  # the speech starts after the lead silence
    assert samples.size / rate - loud[-1] / rate >= 3.0  # and is followed by the tail
    assert wav_info(path.read_bytes()).has_sound


async def test_stt_uploads_the_speech_and_gets_the_configured_transcript(
    espeak, server, plan, tmp_path
):
    stt = plan["stt"]
    assert isinstance(stt, openai.STT)
    path = speak_to_wav(DEFAULT_TRANSCRIPT, tmp_path / "q.wav", tail_silence=0.2)
    samples, rate, _ = read_wav(path.read_bytes())

    event = await stt.recognize(frames_of(samples, rate))
    silent = await stt.recognize(frames_of(np.zeros(rate // 2, np.float32), rate))
    await stt.aclose()

    assert event.alternatives[0].text == DEFAULT_TRANSCRIPT
    assert silent.alternatives[0].text == ""
    speech, quiet = server.transcriptions
    assert speech.model == "gpt-4o-mini-transcribe" and speech.language == "en"
    assert speech.response_format == "json"
    assert speech.sample_rate == 48000 and speech.duration == pytest.approx(samples.size / rate)
    assert speech.has_speech and speech.rms > 0.05
    assert not quiet.has_speech and quiet.rms == 0.0


async def test_stt_transcripts_are_scripted_in_order_or_by_a_callable():
    frames = frames_of(0.2 * np.sin(np.arange(4800) / 3.0).astype(np.float32), 24000)
    async with OpenAIServerDouble(transcripts=["First.", "Second."]) as server:
        stt = openai.STT(base_url=server.base_url, api_key="test", model="whisper-1")
        texts = [(await stt.recognize(frames)).alternatives[0].text for _ in range(3)]
        await stt.aclose()
    assert texts == ["First.", "Second.", DEFAULT_TRANSCRIPT]
    assert server.transcriptions[0].response_format == "verbose_json"

    async with OpenAIServerDouble(transcripts=lambda r: f"{r.duration:.1f} s") as server:
        stt = openai.STT(base_url=server.base_url, api_key="test")
        assert (await stt.recognize(frames)).alternatives[0].text == "0.2 s"
        await stt.aclose()


async def test_tts_answers_audible_audio_in_the_format_the_plugin_asks(server, plan):
    tts = plan["tts"]
    assert isinstance(tts, openai.TTS)
    frames = [event.frame async for event in tts.synthesize("Hello! How can I help?")]
    await tts.aclose()

    [speech] = server.speeches
    assert speech.text == "Hello! How can I help?"
    assert (speech.model, speech.voice) == ("gpt-4o-mini-tts", "alloy")
    assert (speech.response_format, speech.stream_format) == ("mp3", "sse")
    audio = rtc.combine_audio_frames(frames)
    assert audio.duration == pytest.approx(speech.duration, abs=0.1)
    assert pcm16_rms(audio.data.tobytes()) > 0.1


@pytest.mark.parametrize("response_format", ["pcm", "wav", "opus"])
async def test_tts_other_formats_and_raw_audio_streams(response_format):
    async with OpenAIServerDouble() as server:
        # tts-1 asks stream_format=audio: the bytes come back as they are.
        tts = openai.TTS(
            model="tts-1",
            base_url=server.base_url,
            api_key="test",
            response_format=response_format,
        )
        frames = [event.frame async for event in tts.synthesize("Goodbye!")]
        await tts.aclose()
    assert server.speeches[0].stream_format == "audio"
    audio = rtc.combine_audio_frames(frames)
    assert audio.duration == pytest.approx(0.4, abs=0.05)
    assert pcm16_rms(audio.data.tobytes()) > 0.1


async def collect(stream) -> tuple[str, list[lk_llm.FunctionToolCall]]:
    text, calls = "", []
    async with stream:
        async for chunk in stream:
            if chunk.delta:
                text += chunk.delta.content or ""
                calls.extend(chunk.delta.tool_calls)
    return text, calls


async def test_llm_streams_scripted_text_then_a_tool_call_then_the_default(server, plan):
    server.replies = [
        "We open at nine.",
        {"text": "Goodbye!", "tool": END_CONVERSATION, "arguments": {"reason": "done"}},
    ]
    llm = plan["llm"]
    tools = build_function_tools([END_CONVERSATION], conversation=None, request_end=print)
    chat = lk_llm.ChatContext.empty()
    chat.add_message(role="user", content="When do you open?")

    assert await collect(llm.chat(chat_ctx=chat, tools=tools)) == ("We open at nine.", [])
    text, [call] = await collect(llm.chat(chat_ctx=chat, tools=tools))
    assert text == "Goodbye!"
    assert isinstance(call, lk_llm.FunctionToolCall) and call.name == END_CONVERSATION
    assert json.loads(call.arguments) == {"reason": "done"} and call.call_id
    assert await collect(llm.chat(chat_ctx=chat)) == ("We are open from nine to six.", [])
    await llm.aclose()

    first = server.requests[0]
    assert first["messages"][-1] == {"role": "user", "content": "When do you open?"}
    assert [tool["function"]["name"] for tool in first["tools"]] == [END_CONVERSATION]
    assert server.requests[2]["tools"] == []


async def test_errors_are_openai_json_errors_the_plugins_report():
    async with ChatCompletionsServerDouble(replies=[{"error": "bad model", "status": 400}]) as s:
        llm = openai.LLM(model="m", base_url=s.base_url, api_key="test")
        chat = lk_llm.ChatContext.empty()
        chat.add_message(role="user", content="Hi")
        with pytest.raises(APIStatusError) as refused:
            await collect(llm.chat(chat_ctx=chat))
        assert refused.value.status_code == 400 and "bad model" in refused.value.message
        await llm.aclose()

        async with aiohttp.ClientSession() as http:
            async with http.post(f"{s.base_url}/chat/completions", data="{") as response:
                assert response.status == 400
                assert (await response.json())["error"]["type"] == "invalid_request_error"
            async with http.get(f"{s.base_url}/models") as response:
                assert response.status == 404 and "error" in await response.json()
    assert s.errors == []


def test_a_double_serves_from_a_thread_for_synchronous_tests():
    with serve_in_thread(OpenAIServerDouble(replies=["Hi there."])) as server:
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=json.dumps({"model": "m", "messages": [], "stream": True}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            events = [line for line in response.read().decode().splitlines() if line]
        assert server.in_thread.call(asyncio.sleep, 0, timeout=5) is None
    assert events[-1] == "data: [DONE]"
    contents = [json.loads(e[6:])["choices"] for e in events[:-1]]
    text = "".join(c[0]["delta"].get("content") or "" for c in contents if c)
    assert text == "Hi there." and len(server.requests) == 1
