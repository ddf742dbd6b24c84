"""OpenAI-compatible HTTP servers on 127.0.0.1, for the real ``livekit-plugins-openai`` clients.

``ChatCompletionsServerDouble`` answers any ``…/chat/completions`` POST (OpenAI, Ollama-style
``/v1`` and Azure's ``/openai/deployments/<name>/chat/completions``) with a streamed reply as
server-sent events, then a usage chunk, the way OpenAI-compatible servers do, and records
each request. Replies are scripted: ``replies`` is consumed in order, then ``reply_parts``
is the default answer. A reply is

- a string (streamed word by word) or a list of strings (streamed as those parts);
- ``{"tool": "end_conversation", "arguments": {...}}``: a tool call, streamed in OpenAI's
  ``tool_calls`` delta format (id and name first, the arguments JSON in pieces), finished
  with ``finish_reason="tool_calls"``; add ``"text"`` to say something before it;
- ``{"error": "message", "status": 400}``: an OpenAI-style JSON error instead of a stream;
- a callable taking the recorded request (a dict) and returning one of the above.

``OpenAIServerDouble`` adds the audio endpoints the openai STT and TTS plugins call:

- ``POST /v1/audio/transcriptions`` (multipart, non-streaming; the plugin uploads a 24 kHz
  16-bit mono WAV and asks ``response_format=json``, ``verbose_json`` for ``whisper-1``):
  records model, language, the WAV and its duration and RMS level, and answers a transcript.
  Audio with sound (RMS above ``speech_threshold``) takes the next of ``transcripts``, then
  ``transcript``; silent audio gets ``""`` and consumes nothing. ``transcripts`` may also be
  a callable taking the ``TranscriptionRequest`` and returning the text.
- ``POST /v1/audio/speech``: audible audio for the text (a tone, ``TONE_SECONDS_PER_CHAR``
  per character, or espeak-ng speech with ``voice_audio="espeak"``) in the requested
  ``response_format`` (mp3 by default, as the plugin asks; also opus, aac, flac, wav, pcm),
  as SSE ``speech.audio.delta`` events when the request asks ``stream_format="sse"`` (the
  plugin does for every model but tts-1/tts-1-hd), else as the raw bytes.

Errors are answered as OpenAI-style JSON (``{"error": {"message", "type", ...}}``), never as
tracebacks; anything the double could not handle is also kept in ``errors``.

An outage: ``fail("llm", "tts", status=503)`` makes those stages (``stt``, ``llm``, ``tts``)
answer every request with that error until ``recover()``; each refused request is counted
in ``refused`` (stage names, in order).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from tests.doubles.local_server import LocalServer
from tests.doubles.wav import SPEECH_RMS, to_pcm16, wav_bytes, wav_info

logger = logging.getLogger(__name__)

DEFAULT_TRANSCRIPT = "What are your opening hours?"
#: OpenAI's speech endpoint answers 24 kHz mono.
TTS_SAMPLE_RATE = 24000
TONE_SECONDS_PER_CHAR = 0.05
TONE_MIN_SECONDS = 0.3
TONE_MAX_SECONDS = 8.0
TONE_HZ = 440.0

AUDIO_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
#: response_format → (PyAV container format, codec) for the compressed formats.
_AV_FORMATS = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OpenAIError(Exception):
    """Answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, message: str, status: int = 400, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.message, self.status, self.type = message, status, type_


def error_response(message: str, status: int = 400, type_: str = "invalid_request_error"):
    body = {"error": {"message": message, "type": type_, "param": None, "code": None}}
    return web.json_response(body, status=status)


class ChatCompletionsServerDouble(LocalServer):
    def __init__(
        self,
        reply_parts: list[str] | None = None,
        usage: dict[str, int] | None = None,
        *,
        replies: list[Any] | None = None,
    ) -> None:
        super().__init__()
        #: The default reply, once ``replies`` is used up.
        self.reply_parts = reply_parts or ["Open ", "until six."]
        #: Scripted replies, consumed one per request.
        self.replies: list[Any] = list(replies or [])
        self.usage = usage or {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
        #: One dict per chat request: path, query, headers, json, and its messages and tools.
        self.requests: list[dict[str, Any]] = []
        #: Failures inside the double (answered as 500 JSON errors), for test diagnostics.
        self.errors: list[str] = []
        #: Stages in an outage → (HTTP status, message); see ``fail``.
        self.outages: dict[str, tuple[int, str]] = {}
        #: The stage of every request refused by an outage, in order.
        self.refused: list[str] = []

    def fail(self, *stages: str, status: int = 503, message: str = "") -> None:
        """Answer every request of ``stages`` (``stt``, ``llm``, ``tts``) with an error."""
        for stage in stages:
            if stage not in ("stt", "llm", "tts"):
                raise ValueError(f"unknown stage {stage!r}")
            self.outages[stage] = (status, message or f"The {stage} service is unavailable.")

    def recover(self) -> None:
        self.outages.clear()

    def check_outage(self, stage: str) -> None:
        if stage in self.outages:
            self.refused.append(stage)
            status, message = self.outages[stage]
            raise OpenAIError(message, status, "server_error" if status >= 500 else "api_error")

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``…/v1``)."""
        return f"{self.url}/v1"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.add_api_routes(router)
        # Anything else (the TTS plugin's prewarm GETs the base URL): an OpenAI-style 404.
        router.add_route("*", "/{tail:.*}", self.guarded(self.not_found))

    def add_api_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{tail:.*}/chat/completions", self.guarded(self.chat_completions))

    def guarded(self, handler: Handler) -> Handler:
        """The handler, answering OpenAI-style JSON errors instead of tracebacks."""

        async def guarded_handler(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except OpenAIError as exc:
                return error_response(exc.message, exc.status, exc.type)
            except (asyncio.CancelledError, ConnectionResetError):
                raise
            except Exception as exc:
                logger.exception("the OpenAI double failed on %s", request.path)
                self.errors.append(f"{request.path}: {type(exc).__name__}: {exc}")
                return error_response(
                    f"the test double failed: {type(exc).__name__}: {exc}", 500, "server_error"
                )

        return guarded_handler

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        raise OpenAIError(f"Invalid URL ({request.method} {request.path})", 404)

    # -- chat completions ---------------------------------------------------------------

    def next_reply(self, record: dict[str, Any]) -> Any:
        reply = self.replies.pop(0) if self.replies else list(self.reply_parts)
        return reply(record) if callable(reply) else reply

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.check_outage("llm")
        try:
            body = await request.json()
        except ValueError:
            raise OpenAIError("The request body is not valid JSON.") from None
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            raise OpenAIError("model and messages are required.")
        record = {
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "json": body,
            "messages": body["messages"],
            "tools": body.get("tools") or [],
        }
        self.requests.append(record)
        reply = self.next_reply(record)
        if isinstance(reply, dict) and "error" in reply:
            raise OpenAIError(str(reply["error"]), int(reply.get("status", 400)))
        if not body.get("stream"):
            raise OpenAIError("This double only streams: send stream=true.")

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {data}\n\n".encode())

        base = {"id": f"chatcmpl-local-{len(self.requests)}", "object": "chat.completion.chunk"}
        base.update(created=1, model=body["model"])

        async def delta(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            await send({**base, "choices": [choice]})

        parts, tool = _reply_parts(reply)
        await delta({"role": "assistant", "content": parts[0] if parts else None})
        for part in parts[1:]:
            await delta({"content": part})
        if tool is not None:
            call_id = f"call_local_{len(self.requests)}"
            arguments = json.dumps(tool.get("arguments") or {})
            half = len(arguments) // 2
            function = {"name": tool["tool"], "arguments": ""}
            call = {"index": 0, "id": call_id, "type": "function", "function": function}
            await delta({"tool_calls": [call]})
            for piece in (arguments[:half], arguments[half:]):
                await delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        await delta({}, "tool_calls" if tool is not None else "stop")
        if (body.get("stream_options") or {}).get("include_usage", True):
            await send({**base, "choices": [], "usage": self.usage})
        await send("[DONE]")
        await response.write_eof()
        return response


def _reply_parts(reply: Any) -> tuple[list[str], dict[str, Any] | None]:
    """(text parts, tool call or None) of a reply spec."""
    if isinstance(reply, str):
        words = reply.split(" ")
        return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)], None
    if isinstance(reply, dict):
        text = reply.get("text") or []
        parts = _reply_parts(text)[0] if isinstance(text, str) else list(text)
        return parts, reply if "tool" in reply else None
    if isinstance(reply, list | tuple) and all(isinstance(part, str) for part in reply):
        return list(reply), None
    raise TypeError(f"not a reply spec: {reply!r}")


@dataclass
class TranscriptionRequest:
    model: str
    language: str | None
    response_format: str
    #: Every form field but the file (prompt, temperature, languages…), as sent.
    fields: dict[str, Any]
    audio: bytes
    #: Decoded from the uploaded WAV (None when it is no 16-bit PCM WAV).
    sample_rate: int | None
    duration: float | None
    rms: float | None
    has_speech: bool
    transcript: str = ""


@dataclass
class SpeechRequest:
    text: str
    model: str
    voice: str
    response_format: str
    stream_format: str | None
    speed: float | None
    instructions: str | None
    #: Seconds of audio answered.
    duration: float = 0.0
    body: dict[str, Any] = field(default_factory=dict)


TranscriptSource = list[str] | Callable[[TranscriptionRequest], str]


#: Persona fields that make the worker use OpenAI's STT, LLM and TTS (so this double, through
#: ``OPENAI_BASE_URL``) and silence-based turns (no turn-detector model to download).
OPENAI_PERSONA_FIELDS = {
    "stt_provider": "openai",
    "stt_model": "gpt-4o-mini-transcribe",
    "llm_provider": "openai",
    "llm_model": "gpt-4o-mini",
    "tts_provider": "openai",
    "tts_model": "gpt-4o-mini-tts",
    "tts_voice": "alloy",
    "turn_detection": "vad",
}


class OpenAIServerDouble(ChatCompletionsServerDouble):
    """Chat completions, transcriptions and speech, as the livekit openai plugin calls them."""

    def __init__(
        self,
        *,
        replies: list[Any] | None = None,
        default_reply: str | list[str] = "We are open from nine to six.",
        transcripts: TranscriptSource | None = None,
        transcript: str = DEFAULT_TRANSCRIPT,
        speech_threshold: float = SPEECH_RMS,
        voice_audio: str = "tone",
        usage: dict[str, int] | None = None,
    ) -> None:
        parts = _reply_parts(default_reply)[0]
        super().__init__(parts, usage, replies=replies)
        self.transcripts: TranscriptSource = (
            transcripts if callable(transcripts) else list(transcripts or [])
        )
        self.transcript = transcript
        self.speech_threshold = speech_threshold
        if voice_audio not in ("tone", "espeak"):
            raise ValueError("voice_audio is 'tone' or 'espeak'")
        self.voice_audio = voice_audio
        self.transcriptions: list[TranscriptionRequest] = []
        self.speeches: list[SpeechRequest] = []

    def script(
        self,
        *,
        replies: list[Any] | None = None,
        default_reply: str | list[str] = "We are open from nine to six.",
        transcripts: TranscriptSource | None = None,
        transcript: str = DEFAULT_TRANSCRIPT,
    ) -> None:
        """Start afresh (for the next test of a long-lived double): this script, no records."""
        self.reply_parts = _reply_parts(default_reply)[0]
        self.replies = list(replies or [])
        self.transcripts = transcripts if callable(transcripts) else list(transcripts or [])
        self.transcript = transcript
        self.requests.clear()
        self.errors.clear()
        self.recover()
        self.refused.clear()
        self.transcriptions.clear()
        self.speeches.clear()

    @property
    def spoken_texts(self) -> list[str]:
        return [speech.text for speech in self.speeches]

    def add_api_routes(self, router: web.UrlDispatcher) -> None:
        super().add_api_routes(router)
        router.add_post("/{tail:.*}/audio/transcriptions", self.guarded(self.transcriptions_api))
        router.add_post("/{tail:.*}/audio/speech", self.guarded(self.speech_api))

    # -- speech-to-text -----------------------------------------------------------------

    def choose_transcript(self, request: TranscriptionRequest) -> str:
        if callable(self.transcripts):
            return self.transcripts(request)
        if not request.has_speech:
            return ""
        return self.transcripts.pop(0) if self.transcripts else self.transcript

    async def transcriptions_api(self, request: web.Request) -> web.StreamResponse:
        self.check_outage("stt")
        if not request.content_type.startswith("multipart/"):
            raise OpenAIError("Expected a multipart/form-data upload.")
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise OpenAIError("Missing the audio file ('file').")
        audio = upload.file.read()
        fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
        try:
            info = wav_info(audio)
        except Exception:
            info = None
        record = TranscriptionRequest(
            model=fields.get("model", ""),
            language=fields.get("language"),
            response_format=fields.get("response_format", "json"),
            fields=fields,
            audio=audio,
            sample_rate=info.sample_rate if info else None,
            duration=info.duration if info else None,
            rms=info.rms if info else None,
            has_speech=bool(info and info.rms > self.speech_threshold),
        )
        self.transcriptions.append(record)
        record.transcript = text = self.choose_transcript(record)
        seconds = record.duration or 0.0
        if record.response_format == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        if record.response_format == "verbose_json":
            return web.json_response(
                {
                    "task": "transcribe",
                    "language": record.language or "english",
                    "duration": seconds,
                    "text": text,
                    "segments": [],
                }
            )
        usage = {"type": "duration", "seconds": int(round(seconds))}
        return web.json_response({"text": text, "usage": usage})

    # -- text-to-speech -----------------------------------------------------------------

    def speech_samples(self, text: str) -> np.ndarray:
        """Audible mono float samples at 24 kHz for ``text``."""
        if self.voice_audio == "espeak":
            from tests.e2e.speech import speech_samples

            return speech_samples(text or "okay", sample_rate=TTS_SAMPLE_RATE)
        seconds = min(TONE_MAX_SECONDS, max(TONE_MIN_SECONDS, TONE_SECONDS_PER_CHAR * len(text)))
        t = np.arange(int(seconds * TTS_SAMPLE_RATE)) / TTS_SAMPLE_RATE
        tone = 0.3 * np.sin(2 * np.pi * TONE_HZ * t)
        ramp = min(len(t) // 2, TTS_SAMPLE_RATE // 100)  # 10 ms fades: no clicks
        envelope = np.ones_like(t)
        envelope[:ramp] = np.linspace(0, 1, ramp)
        envelope[len(t) - ramp :] = np.linspace(1, 0, ramp)
        return (tone * envelope).astype(np.float32)

    async def speech_api(self, request: web.Request) -> web.StreamResponse:
        self.check_outage("tts")
        try:
            body = await request.json()
        except ValueError:
            raise OpenAIError("The request body is not valid JSON.") from None
        text = body.get("input") if isinstance(body, dict) else None
        if not isinstance(text, str) or not body.get("model") or not body.get("voice"):
            raise OpenAIError("input, model and voice are required.")
        response_format = body.get("response_format") or "mp3"
        if response_format not in AUDIO_CONTENT_TYPES:
            raise OpenAIError(f"Unsupported response_format {response_format!r}.")
        record = SpeechRequest(
            text=text,
            model=body["model"],
            voice=body["voice"],
            response_format=response_format,
            stream_format=body.get("stream_format"),
            speed=body.get("speed"),
            instructions=body.get("instructions"),
            body=body,
        )
        self.speeches.append(record)
        samples = self.speech_samples(text)
        record.duration = samples.size / TTS_SAMPLE_RATE
        audio = await asyncio.get_running_loop().run_in_executor(
            None, encode_audio, samples, response_format
        )
        content_type = AUDIO_CONTENT_TYPES[response_format]
        if record.stream_format != "sse":
            return web.Response(body=audio, headers={"Content-Type": content_type})

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = 8192
        for start in range(0, len(audio), chunk):
            event = {"type": "speech.audio.delta", "audio": _b64(audio[start : start + chunk])}
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        usage = {"input_tokens": len(text), "output_tokens": len(audio) // 100}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        done = {"type": "speech.audio.done", "usage": usage}
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        await response.write_eof()
        return response


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_audio(samples: np.ndarray, response_format: str) -> bytes:
    """Mono 24 kHz float samples in OpenAI's ``response_format`` (pcm is raw s16le)."""
    if response_format == "pcm":
        return to_pcm16(samples)
    if response_format == "wav":
        return wav_bytes(samples, TTS_SAMPLE_RATE)
    import av

    container_format, codec = _AV_FORMATS[response_format]
    rate = 48000 if codec == "libopus" else TTS_SAMPLE_RATE
    if rate != TTS_SAMPLE_RATE:
        from tests.doubles.wav import resample

        samples = resample(samples, TTS_SAMPLE_RATE, rate)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        pcm = np.frombuffer(to_pcm16(samples), dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
