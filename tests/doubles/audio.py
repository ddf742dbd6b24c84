"""``DoubleTTS`` (silence, a little per character) and ``InstantAudioOutput`` (plays at once)."""

from __future__ import annotations

from livekit import rtc
from livekit.agents import tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.voice import io

SAMPLE_RATE = 16000


class DoubleTTS(tts.TTS):
    """Synthesises 10 ms of silence per character, so usage counts real characters."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
        )
        self.texts: list[str] = []

    @property
    def model(self) -> str:
        return "double-tts"

    @property
    def provider(self) -> str:
        return "tests"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        self.texts.append(text)
        return _SilenceStream(tts=self, input_text=text, conn_options=conn_options)


class _SilenceStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id="double-tts",
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        samples = SAMPLE_RATE // 100 * max(1, len(self.input_text))
        output_emitter.push(b"\x00\x00" * samples)
        output_emitter.flush()


class InstantAudioOutput(io.AudioOutput):
    """An audio sink that 'plays' everything the moment it is flushed."""

    def __init__(self) -> None:
        super().__init__(
            label="InstantAudioOutput",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=SAMPLE_RATE,
        )
        self._pushed = 0.0
        self.played_seconds = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._pushed:
            self.on_playback_started(created_at=0.0)
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        self.played_seconds += self._pushed
        self.on_playback_finished(playback_position=self._pushed, interrupted=False)
        self._pushed = 0.0

    def clear_buffer(self) -> None:
        if self._pushed:
            self.on_playback_finished(playback_position=0.0, interrupted=True)
            self._pushed = 0.0


class CaptionOutput(io.TextOutput):
    """A transcription sink (what the widget shows as the agent's captions): keeps each
    flushed line in ``lines``."""

    def __init__(self) -> None:
        super().__init__(label="CaptionOutput", next_in_chain=None)
        self._pending = ""
        self.lines: list[str] = []

    async def capture_text(self, text: str) -> None:
        self._pending += text

    def flush(self) -> None:
        if self._pending.strip():
            self.lines.append(self._pending.strip())
        self._pending = ""
