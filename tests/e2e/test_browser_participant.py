"""livekit-client in real headless Chromium and LiveKit's Python SDK in one room of the
server double: RPC both ways, the browser's fake microphone reaches Python, and the browser
subscribes to Python's audio."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from livekit import rtc

from tests.doubles.local_server import LocalServer
from tests.e2e.conftest import (
    SAMPLE_RATE,
    connected,
    loudest_sample,
    sine_publisher,
    subscribed_track,
    token,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LIVEKIT_CLIENT = ROOT / "static/widget/node_modules/livekit-client/dist/livekit-client.esm.mjs"
CHROMIUM = Path("/usr/bin/chromium")
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>e2e</title></head><body>
<script type="module">
import * as LK from "/livekit-client.esm.mjs";
window.LK = LK;
window.lkReady = true;
</script>
</body></html>
"""
CONNECT = """
async ({url, token}) => {
  const LK = window.LK;
  const room = new LK.Room();
  window.room = room;
  window.subscribed = [];
  window.rpcCalls = [];
  room.on(LK.RoomEvent.TrackSubscribed, (track, publication, participant) => {
    window.subscribed.push({identity: participant.identity, sid: track.sid, kind: track.kind});
    if (track.kind === "audio") document.body.appendChild(track.attach());
  });
  room.registerRpcMethod("browser.echo", async (data) => {
    window.rpcCalls.push({caller: data.callerIdentity, payload: data.payload});
    return "browser got " + data.payload;
  });
  await room.connect(url, token);
  await room.localParticipant.setMicrophoneEnabled(true);
  return room.localParticipant.sid;
}
"""
INBOUND_AUDIO = """
async () => {
  for (const participant of window.room.remoteParticipants.values()) {
    for (const publication of participant.audioTrackPublications.values()) {
      const track = publication.track;
      if (!track || !track.receiver) continue;
      const stats = await track.receiver.getStats();
      for (const report of stats.values()) {
        if (report.type === "inbound-rtp") {
          return {identity: participant.identity, packets: report.packetsReceived || 0,
                  energy: report.totalAudioEnergy || 0};
        }
      }
    }
  }
  return null;
}
"""


class PageServer(LocalServer):
    """The test page and livekit-client, from a real HTTP origin on 127.0.0.1."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.page)
        router.add_get("/livekit-client.esm.mjs", self.library)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def library(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(LIVEKIT_CLIENT, headers={"Content-Type": "text/javascript"})


def tone_wav(path: Path) -> Path:
    """Two seconds of a 330 Hz tone, then 0.2 s of silence (Chromium loops the file)."""
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (np.sin(2 * np.pi * 330 * t) * 14000).astype(np.int16)
    samples = np.concatenate([tone, np.zeros(SAMPLE_RATE // 5, dtype=np.int16)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return path


@contextlib.asynccontextmanager
async def chromium_page(fake_audio: Path):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_audio}",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                "--allow-loopback-in-peer-connection",
            ],
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(15000)
            yield page
        finally:
            await browser.close()


async def test_browser_and_python_exchange_rpcs_and_audio(livekit, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    if not LIVEKIT_CLIENT.exists():
        pytest.skip("livekit-client is not installed: cd static/widget && npm ci")
    python_calls = []

    async def python_echo(data: rtc.RpcInvocationData) -> str:
        python_calls.append((data.caller_identity, data.payload))
        return f"python got {data.payload}"

    async with (
        PageServer() as pages,
        connected(livekit.url, token("python", "mixed-room")) as python,
        sine_publisher(python) as python_track,
        chromium_page(tone_wav(tmp_path / "tone.wav")) as page,
    ):
        python.local_participant.register_rpc_method("python.echo", python_echo)
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        await page.goto(pages.url + "/")
        await page.wait_for_function("window.lkReady === true")
        browser_sid = await page.evaluate(
            CONNECT, {"url": livekit.url, "token": token("browser", "mixed-room")}
        )
        assert browser_sid.startswith("PA_"), console

        # the page calls Python
        answer = await page.evaluate(
            """() => window.room.localParticipant.performRpc(
                {destinationIdentity: "python", method: "python.echo", payload: "from the page"})"""
        )
        assert answer == "python got from the page"
        assert python_calls == [("browser", "from the page")]

        # Python calls the page
        answer = await asyncio.wait_for(
            python.local_participant.perform_rpc(
                destination_identity="browser", method="browser.echo", payload="from python"
            ),
            10,
        )
        assert answer == "browser got from python"
        assert await page.evaluate("window.rpcCalls") == [
            {"caller": "python", "payload": "from python"}
        ]

        # the browser's fake microphone reaches Python
        browser_audio = await subscribed_track(python, "browser")
        assert await loudest_sample(browser_audio) > 3000

        # the browser subscribed to Python's sine wave, and its packets arrive
        python_sid = python.local_participant.track_publications
        await page.wait_for_function(
            "window.subscribed.some(s => s.identity === 'python' && s.kind === 'audio')"
        )
        subscribed = await page.evaluate("window.subscribed")
        assert {s["sid"] for s in subscribed} <= set(python_sid)
        assert python_track.sid in {s["sid"] for s in subscribed}

        async def packets_flowing() -> dict:
            while True:
                stats = await page.evaluate(INBOUND_AUDIO)
                if stats and stats["packets"] > 50:
                    return stats
                await asyncio.sleep(0.2)

        stats = await asyncio.wait_for(packets_flowing(), 15)
        assert stats["identity"] == "python"

        await page.evaluate("window.room.disconnect()")
        await livekit.wait_for(lambda: "browser" not in livekit.rooms["mixed-room"].participants)
    kinds = {join["identity"]: join["sdk"] for join in livekit.joins}
    assert kinds == {"python": "python", "browser": "js"}
