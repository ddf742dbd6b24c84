"""Spoken test input: espeak-ng speech as a WAV for Chromium's fake microphone.

Chromium's ``--use-file-for-fake-audio-capture=<wav>`` LOOPS the file, so the file is: a
little lead silence, the speech once, then a long trailing silence (a minute by default),
so the visitor says the sentence once per test. 16-bit mono PCM at 48 kHz, which Chromium
reads without resampling surprises.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tests.doubles.wav import read_wav, resample, wav_bytes

ESPEAK = "espeak-ng"
SAMPLE_RATE = 48000

__all__ = ["SAMPLE_RATE", "has_espeak", "speak_to_wav", "speech_samples"]


@functools.cache
def has_espeak() -> str | None:
    """None when espeak-ng can speak here; otherwise why not (for ``pytest.skip``).

    Careful: it returns the *problem*, so ``if reason := has_espeak(): pytest.skip(reason)``.
    """
    if shutil.which(ESPEAK) is None:
        return "espeak-ng is not installed (apt-get install -y espeak-ng)"
    try:
        result = subprocess.run(
            [ESPEAK, "-v", "en", "--stdout", "test"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"espeak-ng does not run: {exc}"
    if result.returncode != 0 or len(result.stdout) < 1000:
        return f"espeak-ng produced no audio: {result.stderr.decode(errors='replace').strip()}"
    return None


def speech_samples(text: str, *, lang: str = "en", sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """espeak-ng speaking ``text`` (mono float32 in -1…1 at ``sample_rate``), no padding."""
    problem = has_espeak()
    if problem:
        raise RuntimeError(problem)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(
            [ESPEAK, "-v", lang, "-w", str(raw), text], check=True, capture_output=True, timeout=60
        )
        samples, rate, channels = read_wav(raw.read_bytes())
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return resample(samples, rate, sample_rate)


def speak_to_wav(
    text: str,
    path: str | Path,
    *,
    lang: str = "en",
    lead_silence: float = 0.5,
    tail_silence: float = 60.0,
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Write ``lead_silence`` s of silence, ``text`` spoken once, ``tail_silence`` s of silence
    to ``path`` as a 16-bit mono PCM WAV (48 kHz by default); returns the path."""
    speech = speech_samples(text, lang=lang, sample_rate=sample_rate)
    lead = np.zeros(int(lead_silence * sample_rate), dtype=np.float32)
    tail = np.zeros(int(tail_silence * sample_rate), dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(np.concatenate([lead, speech, tail]), sample_rate))
    return path
