"""Helpers for the widget API tests: a stand-in LiveKit HTTP server, signing, assertions.

``FakeLiveKitServer`` is a test double: a real HTTP server on 127.0.0.1 that answers
livekit-api's Twirp requests with a fixed status, so the real RoomService client runs
over a real socket.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from django.core.cache import cache
from google.protobuf.json_format import MessageToJson
from livekit.api import AccessToken, TokenVerifier

from voice_widget.conf import vw_settings
from voice_widget.models import Conversation


@pytest.fixture(autouse=True)
def fresh_throttle_cache():
    """Throttle counters live in the cache; every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeLiveKitServer:
    """Answers every POST with ``status`` and ``body``; records what it received."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/protobuf"
    requests: list[RecordedRequest] = field(default_factory=list)

    def start(self) -> FakeLiveKitServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(
                    RecordedRequest(
                        self.path,
                        {key.lower(): value for key, value in self.headers.items()},
                        self.rfile.read(length),
                    )
                )
                self.send_response(fake.status)
                self.send_header("Content-Type", fake.content_type)
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def unused_local_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def use_livekit_url(settings: Any, url: str) -> None:
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "LIVEKIT_URL": url}


def verifier() -> TokenVerifier:
    return TokenVerifier(vw_settings.LIVEKIT_API_KEY, vw_settings.LIVEKIT_API_SECRET)


def raw_claims(token: str) -> dict[str, Any]:
    """All JWT claims, after TokenVerifier has checked the signature."""
    verifier().verify(token)
    return jwt.decode(token, options={"verify_signature": False})


def signed_webhook(event: Any, *, secret: str | None = None) -> tuple[str, str]:
    """The body and Authorization token LiveKit would send for ``event``.

    Signed the way livekit-server signs webhooks: an access token from the API key and
    secret whose ``sha256`` claim is the base64 SHA-256 of the body.
    """
    body = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = (
        AccessToken(vw_settings.LIVEKIT_API_KEY, secret or vw_settings.LIVEKIT_API_SECRET)
        .with_sha256(digest)
        .to_jwt()
    )
    return body, token


def assert_refused(response: Any, status: int, code: str, *, conversations: int = 0) -> None:
    """A refusal in the API's error shape, with nothing written to the database."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"error", "detail"}
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert Conversation.objects.count() == conversations


def post_json(client: Any, url: str, data: Any, **extra: Any) -> Any:
    return client.post(url, json.dumps(data), content_type="application/json", **extra)
