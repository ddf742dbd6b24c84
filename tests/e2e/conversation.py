"""The whole conversation in one room: the example site (pytest-django's ``live_server``),
the real worker (``run_voice_agent start``), the LiveKit server double, the OpenAI-compatible
STT/LLM/TTS double, and real Chromium whose fake microphone plays espeak-ng speech.

``Visit`` is one visitor's browser on one page. An audio probe (an init script) listens to
what the page hears and says through Web Audio, so a test can tell when the agent's voice
first arrived and when the visitor stopped speaking, in the page's own clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.db import close_old_connections
from django.utils import timezone

from tests.doubles.openai_server import OPENAI_PERSONA_FIELDS
from tests.doubles.wav import wav_bytes
from tests.e2e.speech import speak_to_wav
from tests.playwright_support import chromium_path
from voice_widget.models import Conversation, Turn, WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
WIDGET = "voice-widget >> "
API_KEY = "e2e-key"
API_SECRET = "e2e-secret-e2e-secret-e2e-secret-e2e-secret"
AGENT_NAME = "voice-widget-e2e"
LAPTOP = (1366, 600)
PHONE = (390, 844)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # The agent's audio is attached only after the click; the probe's AudioContext must run.
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    # Inside the namespace Chromium still gathers no candidates on 127.x without this.
    "--allow-loopback-in-peer-connection",
]

#: What the page hears (the agent's tracks) and says (the microphone), as loud intervals in
#: ``performance.now()`` milliseconds, plus when the visitor clicked.
AUDIO_PROBE = """
(() => {
  const probe = { remote: [], local: [], clicks: [], peerConnections: 0 };
  window.__audioProbe = probe;
  const THRESHOLD = 0.02, HANGOVER_MS = 250;
  let context = null;
  function listen(stream, intervals) {
    context = context || new AudioContext();
    const source = context.createMediaStreamSource(stream);
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    let current = null;
    setInterval(() => {
      analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (const v of data) sum += v * v;
      const rms = Math.sqrt(sum / data.length);
      const now = performance.now();
      if (rms > THRESHOLD) {
        if (!current || now - current[1] > HANGOVER_MS) {
          current = [now, now];
          intervals.push(current);
        } else {
          current[1] = now;
        }
      }
    }, 10);
  }
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    probe.peerConnections += 1;
    pc.addEventListener('track', (event) => {
      if (event.track.kind === 'audio') listen(new MediaStream([event.track]), probe.remote);
    });
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    if (stream.getAudioTracks().length) listen(stream.clone(), probe.local);
    return stream;
  };
  document.addEventListener('click', () => probe.clicks.push(performance.now()), true);
  window.widgetEvents = [];
  for (const name of ['voice-widget:state', 'voice-widget:transcript',
                      'voice-widget:ended', 'voice-widget:error', 'voice-widget:resumed']) {
    document.addEventListener(name, (event) =>
      window.widgetEvents.push({ name, detail: event.detail, at: performance.now() }));
  }
})();
"""


def worker_environment(livekit_url: str, openai_base_url: str, **extra: str) -> dict[str, str]:
    """What the worker process needs to meet the doubles (and nothing real)."""
    return {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "VOICE_WIDGET_AGENT_NAME": AGENT_NAME,
        "OPENAI_BASE_URL": openai_base_url,
        "OPENAI_API_KEY": "sk-e2e-double",
        "VOICE_WIDGET_LOG_LEVEL": "INFO",
        **extra,
    }


def use_the_doubles(slug: str, **fields: Any) -> None:
    """Point a demo persona at the OpenAI-compatible doubles: OpenAI STT, LLM and TTS, and
    silence-based turns (voice activity only, the simplest turn-taking to reason about)."""
    from voice_widget.models import Persona

    values = {**OPENAI_PERSONA_FIELDS, "noise_cancellation": "off", **fields}
    # update(), not full_clean(): tests use limits (a few seconds) admin would refuse.
    # updated_at as save() would set it: the session endpoint caches snapshots by it.
    Persona.objects.filter(slug=slug).update(**values, updated_at=timezone.now())


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def wait_for_worker_heartbeat(timeout: float = 15.0) -> None:
    """The worker's own heartbeat row (the test database is flushed between tests)."""
    wait_until(
        lambda: WorkerHeartbeat.objects.filter(agent_name=AGENT_NAME, stopped_at=None).exists(),
        timeout,
        "the worker's heartbeat",
    )


def latest_conversation() -> Conversation | None:
    return Conversation.objects.order_by("-created_at").first()


def wait_for_ending(timeout: float = 30.0) -> Conversation:
    return wait_until(
        lambda: (c := latest_conversation()) is not None and not c.is_open and c,
        timeout,
        "the conversation to end",
    )


def turns(conversation: Conversation) -> list[tuple[str, str]]:
    return list(
        Turn.objects.filter(conversation=conversation)
        .order_by("sequence")
        .values_list("role", "text")
    )


class Visit:
    """One visitor: Chromium (its microphone playing ``speech``), one page, its probe."""

    def __init__(
        self,
        playwright: Any,
        base_url: str,
        wav: Path,
        name: str,
        viewport: tuple[int, int] = LAPTOP,
    ) -> None:
        self.base_url = base_url
        self.name = name
        self.browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
        )
        width, height = viewport
        self.context = self.browser.new_context(
            viewport={"width": width, "height": height},
            locale="en-US",
            is_mobile=width < 500,
            has_touch=width < 500,
        )
        self.context.grant_permissions(["microphone"], origin=base_url)
        self.context.add_init_script(AUDIO_PROBE)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path)
        self.page.wait_for_function(
            "() => customElements.get('voice-widget') !== undefined"
            " && [...document.querySelectorAll('voice-widget')]"
            ".every((el) => !el.shadowRoot.querySelector('.vw').hidden)"
        )

    def click(self, selector: str) -> None:
        self.page.locator(WIDGET + selector).click()

    def state(self) -> str:
        return self.page.evaluate("document.querySelector('voice-widget').state")

    def wait_for_state(self, state: str, timeout: float = 30) -> None:
        self.page.wait_for_function(
            "state => document.querySelector('voice-widget').state === state",
            arg=state,
            timeout=timeout * 1000,
        )

    def text(self, selector: str) -> str:
        return self.page.locator(WIDGET + selector).inner_text(timeout=10000)

    def probe(self) -> dict[str, Any]:
        return self.page.evaluate("window.__audioProbe")

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.page.evaluate(
            "name => window.widgetEvents.filter(e => e.name === name)"
            ".map(e => ({...e.detail, at: e.at}))",
            name,
        )

    def captions(self, role: str | None = None) -> list[str]:
        """The final captions shown, in order (``role``: "agent" or "user")."""
        final = {}
        for caption in self.events("voice-widget:transcript"):
            if caption.get("final") and (role is None or caption["role"] == role):
                final[caption["id"]] = caption["text"]
        return list(final.values())

    def wait_for_caption(self, role: str, count: int = 1, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(shown := self.captions(role)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} {role} caption(s) expected, got {shown}; state {self.state()}"
                )
            self.page.wait_for_timeout(100)
        return shown

    def heard_after(self, start_ms: float) -> list[list[float]]:
        return [i for i in self.probe()["remote"] if i[0] >= start_ms]

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self.browser.close()

    def dump(self) -> str:
        """What the page saw, for failure messages."""
        return json.dumps(
            {"state": self.state(), "events": self.page.evaluate("window.widgetEvents")},
            default=str,
        )[:4000]


def speech(tmp_path: Path, text: str, *, lang: str = "en", lead: float = 7.0) -> Path:
    """The microphone's file: ``lead`` seconds of silence (the greeting plays meanwhile),
    the question once, then a minute of silence (Chromium loops the file)."""
    return speak_to_wav(text, tmp_path / "speech.wav", lang=lang, lead_silence=lead)


def silence(tmp_path: Path, seconds: float = 90.0) -> Path:
    """A microphone that hears nothing (a quiet room)."""
    path = tmp_path / "silence.wav"
    path.write_bytes(wav_bytes(np.zeros(int(seconds * 48000), dtype=np.float32), 48000))
    return path
