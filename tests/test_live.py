"""The admin's live conversation page: its websocket (through the example site's real ASGI
application, AuthMiddlewareStack and all) receiving the lines the worker's real transcript
recorder saves, through channels_redis against the local Redis and in the polling mode; who
may watch; and the pages and the end button."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from livekit.protocol import models as lk_models

from agent_runner.recorder import TranscriptRecorder
from tests.doubles.livekit_server import LiveKitServerDouble, Room
from tests.factories import make_conversation, make_persona, make_turn
from voice_widget import live
from voice_widget.lifecycle import end_conversation
from voice_widget.models import Conversation, ConversationStatus, EndReason
from voice_widget.routing import live_socket_path

REDIS_URL = os.environ.get("VOICE_WIDGET_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
API_KEY = "live-key"
API_SECRET = "live-secret-live-secret-live-secret-live"


def _redis_problem() -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=1):
            return None
    except OSError as error:
        return f"Redis not reachable at {REDIS_URL} ({error}); set VOICE_WIDGET_TEST_REDIS_URL"


@pytest.fixture
def redis_layer(settings: Any) -> str:
    """channels_redis on the local Redis, with a prefix of this test's own (returned)."""
    problem = _redis_problem()
    if problem:
        pytest.skip(problem)
    prefix = f"vw-test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": prefix},
        }
    }
    return prefix


# -- people ----------------------------------------------------------------------------


def _user(username: str, *, staff: bool, perms: tuple[str, ...] = ()) -> Any:
    user = get_user_model().objects.create_user(username, password="pw-123456789")
    user.is_staff = staff
    user.save()
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def _session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@sync_to_async
def _staff_cookie() -> bytes:
    return _session_cookie(_user("watcher", staff=True, perms=("view_conversation",)))


def _communicator(conversation_id: Any, cookie: bytes | None = None) -> WebsocketCommunicator:
    from example_site.asgi import application

    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, live_socket_path(conversation_id), headers=headers)


async def _receive(communicator: WebsocketCommunicator, timeout: float = 5) -> dict[str, Any]:
    return json.loads(await communicator.receive_from(timeout))


async def _receive_until(
    communicator: WebsocketCommunicator, kind: str, timeout: float = 8
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = await _receive(communicator, timeout)
            if message["type"] == kind:
                return message


@sync_to_async
def _conversation_with_a_line() -> Conversation:
    conversation = make_conversation(make_persona(), status=ConversationStatus.ACTIVE)
    make_turn(conversation, 1, "agent", "Hello! How can I help?")
    return conversation


# -- the websocket -----------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
async def test_polling_mode_sends_the_transcript_then_each_line_the_recorder_saves():
    conversation = await _conversation_with_a_line()
    communicator = _communicator(conversation.pk, await _staff_cookie())
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    hello = await _receive(communicator)
    assert hello["type"] == "hello" and hello["mode"] == "polling"
    assert hello["status"] == "active"
    first = await _receive(communicator)
    assert [(t["sequence"], t["role"], t["text"]) for t in first["turns"]] == [
        (1, "agent", "Hello! How can I help?")
    ]

    # The worker's recorder (here in this process: the in-memory layer reaches nobody).
    recorder = await TranscriptRecorder.for_conversation(conversation.pk)
    assert not recorder.live.enabled
    recorder.add("user", "Do you repair e-bikes?")
    recorder.add("agent", "Yes, every day but Sunday.", interrupted=True)
    await recorder.aclose()
    lines = await _receive_until(communicator, "turns")
    while len(lines["turns"]) < 2:  # the two lines may come in one read or two
        lines["turns"] += (await _receive_until(communicator, "turns"))["turns"]
    assert [(t["sequence"], t["text"], t["interrupted"]) for t in lines["turns"]] == [
        (2, "Do you repair e-bikes?", False),
        (3, "Yes, every day but Sunday.", True),
    ]

    await sync_to_async(end_conversation)(conversation.pk, EndReason.CLIENT_END)
    status = await _receive_until(communicator, "status")
    assert (status["status"], status["end_reason"]) == ("ended", "client_end")
    assert status["end_reason_label"] == "Visitor ended it"
    await communicator.disconnect()


@pytestmark_db
async def test_redis_mode_pushes_each_saved_batch_from_the_recorder(redis_layer, monkeypatch):
    # No catch-up read during the test: a line that arrives came through the channel layer.
    monkeypatch.setattr(live, "CATCH_UP_INTERVAL", 3600)
    conversation = await _conversation_with_a_line()
    communicator = _communicator(conversation.pk, await _staff_cookie())
    assert (await communicator.connect(timeout=10))[0]
    hello = await _receive(communicator)
    assert hello["mode"] == "channel_layer"
    await _receive(communicator)  # the line so far

    # The recorder with a layer object of its own, as in the worker's process: only Redis
    # connects the two.
    from channels_redis.core import RedisChannelLayer

    recorder = TranscriptRecorder(conversation.pk, next_sequence=2)
    assert recorder.live.enabled
    recorder.live.layer = RedisChannelLayer(hosts=[REDIS_URL], prefix=redis_layer)
    recorder.start()
    recorder.add("user", "Is the Linden City in stock?")
    pushed = await _receive_until(communicator, "turns", timeout=15)
    assert [(t["sequence"], t["text"]) for t in pushed["turns"]] == [
        (2, "Is the Linden City in stock?")
    ]
    await recorder.aclose()
    assert recorder.live.published == 1 and recorder.live.dropped == 0
    await communicator.disconnect()


@pytestmark_db
async def test_a_line_already_sent_is_not_sent_again_when_it_is_also_pushed(
    redis_layer, monkeypatch
):
    monkeypatch.setattr(live, "CATCH_UP_INTERVAL", 3600)
    conversation = await _conversation_with_a_line()
    communicator = _communicator(conversation.pk, await _staff_cookie())
    assert (await communicator.connect(timeout=10))[0]
    await _receive(communicator)
    await _receive(communicator)  # line 1, from the database

    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    again = live.turn_data(
        sequence=1, role="agent", text="Hello! How can I help?", interrupted=False, created_at=""
    )
    fresh = {**again, "sequence": 2, "text": "Anything else?"}
    await layer.group_send(live.group_name(conversation.pk), live.turns_message([again, fresh]))
    message = await _receive_until(communicator, "turns", timeout=15)
    assert [t["sequence"] for t in message["turns"]] == [2]
    await communicator.disconnect()


@pytestmark_db
async def test_the_last_lines_saved_after_the_ending_still_arrive():
    # The editor's page reloads after "End": the conversation has ended, and the closing line
    # is saved only once the agent's session has closed.
    conversation = await _conversation_with_a_line()
    await sync_to_async(end_conversation)(conversation.pk, EndReason.STAFF_END)
    communicator = _communicator(conversation.pk, await _staff_cookie())
    assert (await communicator.connect(timeout=10))[0]
    hello = await _receive(communicator)
    assert (hello["status"], hello["end_reason"]) == ("ended", "staff_end")
    await _receive(communicator)  # line 1

    recorder = TranscriptRecorder(conversation.pk, next_sequence=2)
    recorder.add("agent", "Goodbye!")
    await recorder.aclose()
    closing = await _receive_until(communicator, "turns")
    assert [t["text"] for t in closing["turns"]] == ["Goodbye!"]
    await communicator.disconnect()


@pytestmark_db
async def test_anonymous_visitors_are_refused():
    conversation = await _conversation_with_a_line()
    connected, code = await _communicator(conversation.pk).connect(timeout=10)
    assert (connected, code) == (False, 4403)


@pytestmark_db
async def test_signed_in_users_who_are_not_staff_are_refused():
    conversation = await _conversation_with_a_line()
    cookie = await sync_to_async(
        lambda: _session_cookie(_user("visitor", staff=False, perms=("view_conversation",)))
    )()
    connected, code = await _communicator(conversation.pk, cookie).connect(timeout=10)
    assert (connected, code) == (False, 4403)


@pytestmark_db
async def test_staff_without_the_view_permission_are_refused():
    conversation = await _conversation_with_a_line()
    cookie = await sync_to_async(lambda: _session_cookie(_user("intern", staff=True)))()
    connected, code = await _communicator(conversation.pk, cookie).connect(timeout=10)
    assert (connected, code) == (False, 4403)


@pytestmark_db
async def test_an_unknown_conversation_is_closed_with_4404():
    connected, code = await _communicator(uuid.uuid4(), await _staff_cookie()).connect(timeout=10)
    assert (connected, code) == (False, 4404)


# -- the worker's publisher ----------------------------------------------------------------


@pytestmark_db
async def test_a_redis_that_is_down_never_holds_up_recording_and_is_logged_once(caplog):
    from channels_redis.core import RedisChannelLayer

    from tests.doubles.stalled_server import StalledServer

    conversation = await _conversation_with_a_line()
    with StalledServer() as stalled:  # accepts and never answers: the worst kind of "down"
        recorder = TranscriptRecorder(conversation.pk, next_sequence=2)
        recorder.live.layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{stalled.port}/0"])
        recorder.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(3):
            recorder.add("user", f"private words {n}")
            await asyncio.sleep(0.05)
        await recorder.aclose()
        # Saving did not wait for the publisher, which gives up after PUBLISH_TIMEOUT each.
        assert loop.time() - started < 1.5
        assert recorder.saved == 3 and recorder.failed == 0
        await asyncio.sleep(0)
        await asyncio.wait_for(recorder.live._sender, timeout=10)
    assert recorder.live.published == 0 and recorder.live.dropped >= 1
    warnings = [r for r in caplog.records if r.name == "agent_runner.live"]
    assert len(warnings) == 1
    assert str(conversation.pk) in warnings[0].getMessage()
    assert "private words" not in warnings[0].getMessage()  # no transcript text in logs


# -- the admin pages -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_live_list_shows_conversations_in_progress_only(admin_client):
    persona = make_persona(name="Ben")
    talking = make_conversation(persona, status=ConversationStatus.ACTIVE)
    ended = make_conversation(persona, status=ConversationStatus.ENDED)
    html = admin_client.get(reverse("admin:voice_widget_conversation_live")).content.decode()
    assert reverse("admin:voice_widget_conversation_live_detail", args=[talking.pk]) in html
    assert reverse("admin:voice_widget_conversation_live_detail", args=[ended.pk]) not in html
    assert "reads new lines from the database every second" in html  # the polling mode
    changelist = admin_client.get(reverse("admin:voice_widget_conversation_changelist"))
    assert reverse("admin:voice_widget_conversation_live") in changelist.content.decode()


@pytest.mark.django_db
def test_the_live_page_shows_the_transcript_so_far_and_its_socket(admin_client):
    conversation = make_conversation(status=ConversationStatus.ACTIVE)
    make_turn(conversation, 1, "agent", "Hello! How can I help?")
    url = reverse("admin:voice_widget_conversation_live_detail", args=[conversation.pk])
    html = admin_client.get(url).content.decode()
    assert 'data-sequence="1"' in html and "Hello! How can I help?" in html
    assert f'data-socket="{live_socket_path(conversation.pk)}"' in html
    assert "voice_widget/admin/live.js" in html
    assert "data-end-form" in html and "End this conversation</button>" in html


@pytest.mark.django_db
def test_staff_without_permissions_cannot_see_or_end(client):
    conversation = make_conversation(status=ConversationStatus.ACTIVE)
    client.force_login(_user("intern", staff=True))
    assert client.get(reverse("admin:voice_widget_conversation_live")).status_code == 403
    watcher = _user("watcher", staff=True, perms=("view_conversation",))
    client.force_login(watcher)
    url = reverse("admin:voice_widget_conversation_live_detail", args=[conversation.pk])
    page = client.get(url)
    assert page.status_code == 200 and "data-end-form" not in page.content.decode()
    end = reverse("admin:voice_widget_conversation_live_end", args=[conversation.pk])
    assert client.post(end).status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).status == ConversationStatus.ACTIVE


@pytest.mark.django_db
def test_visitors_are_sent_to_the_admin_login(client):
    response = client.get(reverse("admin:voice_widget_conversation_live"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.fixture
def livekit_double(settings: Any):
    from tests.e2e.threaded import serve_in_thread

    with serve_in_thread(LiveKitServerDouble(api_key=API_KEY, api_secret=API_SECRET)) as server:
        settings.VOICE_WIDGET = {
            **settings.VOICE_WIDGET,
            "LIVEKIT_URL": server.url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
        }
        yield server


@pytest.mark.django_db
def test_ending_records_staff_end_then_tells_the_agent_through_room_service(
    admin_client, admin_user, livekit_double
):
    conversation = make_conversation(status=ConversationStatus.ACTIVE)
    # A room the double knows (participants would need WebRTC: the e2e tests have them).
    livekit_double.rooms[conversation.room_name] = Room(
        info=lk_models.Room(name=conversation.room_name)
    )
    url = reverse("admin:voice_widget_conversation_live_end", args=[conversation.pk])
    response = admin_client.post(url, follow=True)

    ended = Conversation.objects.get(pk=conversation.pk)
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "staff_end")
    assert ended.end_detail == f"Ended from the live page by {admin_user.username}."
    (sent,) = livekit_double.send_data_requests
    assert (sent.room, sent.topic) == (conversation.room_name, live.CONTROL_TOPIC)
    assert live.parse_control(sent.data) == {"action": "end", "conversation": str(conversation.pk)}
    assert livekit_double.delete_room_requests == []
    assert "the agent is saying its closing line" in response.content.decode()

    again = admin_client.post(url, follow=True)
    assert "had already ended" in again.content.decode()
    assert len(livekit_double.send_data_requests) == 1


@pytest.mark.django_db
def test_when_livekit_cannot_pass_it_on_the_room_is_closed_instead(admin_client, livekit_double):
    conversation = make_conversation(status=ConversationStatus.ACTIVE)  # no such room there
    url = reverse("admin:voice_widget_conversation_live_end", args=[conversation.pk])
    response = admin_client.post(url, follow=True)

    assert Conversation.objects.get(pk=conversation.pk).end_reason == "staff_end"
    assert "LiveKit could not tell the agent (LiveKit answered 404 not_found)" in (
        response.content.decode()
    )
    livekit_double.in_thread.call(
        lambda: livekit_double.wait_for(
            lambda: livekit_double.delete_room_requests == [conversation.room_name]
        )
    )


@pytest.mark.django_db
def test_ending_needs_a_post_with_the_csrf_token(admin_user):
    conversation = make_conversation(status=ConversationStatus.ACTIVE)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    url = reverse("admin:voice_widget_conversation_live_end", args=[conversation.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).is_open
