"""16-bit PCM WAV in and out, and the two numbers tests ask of audio: duration and loudness."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

#: RMS (of samples scaled to -1…1) above which audio counts as containing sound, not silence.
#: Silence and dither stay far below it (~0.001); espeak-ng speech is around 0.1.
SPEECH_RMS = 0.01


@dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    duration: float
    rms: float

    @property
    def has_sound(self) -> bool:
        return self.rms > SPEECH_RMS


def read_wav(data: bytes) -> tuple[np.ndarray, int, int]:
    """``(samples as float32 in -1…1, interleaved; sample rate; channels)`` of a PCM WAV."""
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit PCM, got {8 * wav.getsampwidth()}-bit")
        rate, channels = wav.getframerate(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return samples, rate, channels


def rms(samples: np.ndarray) -> float:
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


def pcm16_rms(pcm: bytes) -> float:
    """RMS of raw little-endian 16-bit PCM bytes, scaled to -1…1."""
    return rms(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)


def wav_info(data: bytes) -> WavInfo:
    samples, rate, channels = read_wav(data)
    return WavInfo(
        sample_rate=rate,
        channels=channels,
        duration=samples.size / channels / rate if rate else 0.0,
        rms=rms(samples),
    )


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in -1…1 as little-endian 16-bit PCM bytes (clipped)."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_bytes(samples: np.ndarray, sample_rate: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(to_pcm16(samples))
    return buffer.getvalue()


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Mono resampling by linear interpolation: good enough for speech in tests."""
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32)
    count = int(round(samples.size * to_rate / from_rate))
    positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)
