"""The admin's live conversation page, with every part real: a visitor talks to Ben through
the widget (Chromium, the LiveKit double, the real worker); an editor, signed in to the site
served by daphne in a process of its own (``manage.py runserver``, ASGI, with the websocket),
follows the transcript as it is spoken and ends the conversation with the keyboard; the
agent says the persona's closing line.

With a Redis of the test's own (started inside the network namespace), the worker's lines
reach the web process through channels_redis; without REDIS_URL the page reads the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conversation import (
    ARTIFACTS,
    LAPTOP,
    PHONE,
    ROOT,
    Visit,
    speech,
    turns,
    use_the_doubles,
    wait_for_ending,
    wait_until,
    worker_environment,
)
from tests.e2e.worker_process import free_port
from tests.playwright_support import chromium_path
from voice_widget import live
from voice_widget.models import Conversation, ConversationStatus

pytestmark = [pytest.mark.e2e, pytest.mark.agent]

REDIS_PORT = free_port()
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
#: The worker always publishes to this Redis; whether a web process listens is the test's choice.
WORKER_ENV = {"REDIS_URL": REDIS_URL}

QUESTION = "What are your opening hours?"
ANSWER = "We are open from nine to six."
GREETING = "Hi, I'm Ben from Linden Bikes. What can I help you with?"
CLOSING = "Our team has to close this conversation now. Thank you, goodbye!"
PASSWORD = "editor-pass-123"
STAFF_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def private_redis(media_machine: None) -> Iterator[str | None]:
    """A Redis inside the namespace (the host's cannot be reached from it); None without
    ``redis-server`` (then only the polling mode is tested, and the test says so)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    process = subprocess.Popen(
        [binary, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(REDIS_PORT, 15)
        yield REDIS_URL
    finally:
        process.terminate()
        process.wait(10)


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
        time.sleep(0.1)


@contextlib.contextmanager
def asgi_site(livekit: Any, openai: Any, *, redis_url: str | None) -> Iterator[str]:
    """The example site under daphne (``runserver``, ASGI: HTTP and the websocket) in a
    process of its own, on the e2e database file; its base URL."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key == "VOICE_WIDGET_E2E_DB"
        or not key.startswith(("LIVEKIT_", "DJANGO_", "VOICE_WIDGET_", "REDIS_URL", "DATABASE_"))
    }
    env.update(worker_environment(livekit.url, openai.base_url))
    env.update(DJANGO_SETTINGS_MODULE="tests.e2e.settings", PYTHONUNBUFFERED="1")
    if redis_url:
        env["REDIS_URL"] = redis_url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    mode = "redis" if redis_url else "polling"
    with open(ARTIFACTS / f"live-page-site-{mode}.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", "--insecure"]
            + ["--skip-checks", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_port(port, 60)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


class StaffBrowser:
    """An editor's Chromium, signed in to admin through its login form."""

    def __init__(self, playwright: Any, base_url: str) -> None:
        self.base_url = base_url
        self.browser = playwright.chromium.launch(executable_path=chromium_path(), args=STAFF_ARGS)
        self.errors: list[str] = []
        self.state: Any = None

    def page(self, viewport: tuple[int, int]) -> Any:
        width, height = viewport
        context = self.browser.new_context(
            viewport={"width": width, "height": height},
            locale="en-US",
            is_mobile=width < 500,
            has_touch=width < 500,
            storage_state=self.state,
        )
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        if self.state is None:
            page.goto(f"{self.base_url}/admin/login/?next=/admin/voice_widget/conversation/live/")
            page.fill("#id_username", "editor")
            page.fill("#id_password", PASSWORD)
            page.keyboard.press("Enter")
            # Not wait_for_url: the login page's own URL ends with the same ?next=….
            page.wait_for_selector(".vw-live-list")
            self.state = context.storage_state()
        return page

    def close(self) -> None:
        self.browser.close()


def _lines(page: Any) -> list[str]:
    return page.locator("[data-transcript] [data-sequence] p").all_inner_texts()


def _wait_for_line(page: Any, text: str, timeout: float = 40) -> None:
    page.wait_for_function(
        "text => [...document.querySelectorAll('[data-transcript] [data-sequence] p')]"
        ".some((p) => p.textContent.includes(text))",
        arg=text,
        timeout=timeout * 1000,
    )


class GroupListener:
    """Another member of a conversation's live group on the test's Redis, in a thread: what
    the worker's process published there, seen from outside both processes."""

    def __init__(self, redis_url: str, group: str) -> None:
        self.redis_url = redis_url
        self.group = group
        self.messages: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._listen(),), daemon=True)

    def __enter__(self) -> GroupListener:
        self._thread.start()
        assert self.ready.wait(10), "the listener could not join the group"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _listen(self) -> None:
        from channels_redis.core import RedisChannelLayer

        layer = RedisChannelLayer(hosts=[self.redis_url])
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self.ready.set()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.messages.append(await asyncio.wait_for(layer.receive(channel), 0.5))
        await layer.group_discard(self.group, channel)
        await layer.close_pools()

    def texts(self) -> list[str]:
        return [turn["text"] for message in self.messages for turn in message["turns"]]


def _follow_and_end(
    playwright: Any,
    site: str,
    visit: Any,
    openai_server: Any,
    livekit_server: Any,
    tmp_path: Any,
    *,
    mode: str,
    redis_url: str | None = None,
) -> Conversation:
    use_the_doubles("ben", closing_message=CLOSING)
    openai_server.script(transcript=QUESTION, default_reply=ANSWER)
    get_user_model().objects.create_superuser("editor", "editor@example.com", PASSWORD)

    visitor = visit(speech(tmp_path, QUESTION, lead=14.0))
    visitor.open("/")
    visitor.click(".launcher")
    visitor.wait_for_state("active")
    assert visitor.wait_for_caption("agent", 1)[0] == GREETING
    conversation = Conversation.objects.get()
    listening = contextlib.ExitStack()
    listener = None
    if redis_url:
        group = live.group_name(conversation.pk)
        listener = listening.enter_context(GroupListener(redis_url, group))

    staff = StaffBrowser(playwright, site)
    try:
        page = staff.page(LAPTOP)
        # The list, then the conversation, with the keyboard.
        link = page.locator("#result_list a").first
        assert link.inner_text() == "Ben"
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/live/")
        expected = "live" if mode == "channel_layer" else "live (reading the database every second)"
        page.wait_for_function(
            "text => document.querySelector('[data-connection]').textContent === text",
            arg=expected,
            timeout=30000,
        )
        page.evaluate("window.__sameDocument = true")
        _wait_for_line(page, GREETING, 30)

        # The visitor's question and the answer appear as they are spoken, with no reload.
        _wait_for_line(page, QUESTION, 60)
        _wait_for_line(page, ANSWER, 30)
        assert page.evaluate("window.__sameDocument") is True
        shown = _lines(page)
        # In order; on a loaded machine the visitor's voice may interrupt an answer, which the
        # page then shows as "… (interrupted)" before the full one.
        assert shown[0] == GREETING
        assert shown.index(ANSWER) > shown.index(QUESTION) > 0
        page.screenshot(path=str(ARTIFACTS / f"live-page-laptop-{mode}.png"))

        phone = staff.page(PHONE)
        phone.goto(f"{site}/admin/voice_widget/conversation/{conversation.pk}/live/")
        try:
            _wait_for_line(phone, ANSWER, 30)
        except Exception:
            phone.screenshot(path=str(ARTIFACTS / f"live-page-phone-{mode}-failed.png"))
            (ARTIFACTS / f"live-page-phone-{mode}-failed.html").write_text(phone.content())
            raise
        phone.screenshot(path=str(ARTIFACTS / f"live-page-phone-{mode}.png"))
        phone.context.close()

        # End it with the keyboard; the page asks first.
        button = page.locator(".vw-live-end-button")
        button.focus()
        assert page.evaluate("document.activeElement.textContent") == "End this conversation"
        page.once("dialog", lambda dialog: dialog.accept())
        page.keyboard.press("Enter")
        page.wait_for_selector(".messagelist .success", timeout=30000)
        _wait_for_line(page, CLOSING, 40)
        page.wait_for_function(
            "() => document.querySelector('[data-status]').textContent"
            ".includes('Ended from the live page')",
            timeout=30000,
        )
        assert staff.errors == []
    finally:
        staff.close()
        listening.close()

    if listener is not None:
        # The worker's job process published the lines through Redis as they were saved.
        assert {QUESTION, ANSWER} <= set(listener.texts())
    ended = wait_for_ending()
    assert (ended.status, ended.end_reason) == (ConversationStatus.ENDED, "staff_end")
    assert ended.end_detail == "Ended from the live page by editor."
    assert CLOSING in " ".join(openai_server.spoken_texts)
    wait_until(lambda: turns(ended)[-1] == ("agent", CLOSING), 20, "the closing line recorded")
    visitor.wait_for_state("ended", timeout=30)
    assert [e["reason"] for e in visitor.events("voice-widget:ended")] == ["staff_end"]
    sent = [r for r in livekit_server.send_data_requests if r.room == ended.room_name]
    assert [(r.topic, live.parse_control(r.data)["action"]) for r in sent] == [
        (live.CONTROL_TOPIC, "end")
    ]
    return ended


@pytest.fixture
def visit(playwright_sync: Any, shop: Any, request: Any) -> Iterator[Any]:
    opened: list[Visit] = []

    def open_visit(wav: Any) -> Visit:
        visitor = Visit(playwright_sync, shop.url, wav, request.node.name, LAPTOP)
        opened.append(visitor)
        return visitor

    yield open_visit
    for visitor in opened:
        visitor.close()


def test_the_live_page_follows_the_talk_through_redis_and_an_editor_ends_it(
    private_redis, playwright_sync, visit, openai_server, livekit_server, tmp_path
):
    if private_redis is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    with asgi_site(livekit_server, openai_server, redis_url=private_redis) as site:
        _follow_and_end(
            playwright_sync,
            site,
            visit,
            openai_server,
            livekit_server,
            tmp_path,
            mode="channel_layer",
            redis_url=private_redis,
        )


def test_without_a_shared_layer_the_live_page_reads_the_database(
    private_redis, playwright_sync, visit, openai_server, livekit_server, tmp_path
):
    with asgi_site(livekit_server, openai_server, redis_url=None) as site:
        _follow_and_end(
            playwright_sync,
            site,
            visit,
            openai_server,
            livekit_server,
            tmp_path,
            mode="polling",
        )
