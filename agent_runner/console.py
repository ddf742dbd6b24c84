"""``run_voice_agent console --text``: type to a persona in the terminal.

A loop of our own rather than LiveKit's console: that one opens the sound card even in text
mode (it needs PortAudio) and is deprecated. Here a real ``AgentSession`` runs without a
room (text mode) with the persona's language model only, driven by ``ConversationRunner``
like any conversation, so the transcript and the ending are saved the same way. The
terminal shows only the conversation and, at the end, one line saying how it ended; logs go
to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from typing import Any, TextIO

from livekit.agents import AgentSession
from livekit.agents.voice.events import ConversationItemAddedEvent

from voice_widget.models import Conversation, EndReason

from .conversation import ConversationRunner
from .pipeline import SessionPlan


def _read_lines(stdin: TextIO, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """In a thread: every line typed, then None at the end of input (Ctrl+D)."""
    try:
        for line in stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
    finally:
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            loop.call_soon_threadsafe(queue.put_nowait, None)


def ending_line(conversation: Conversation) -> str:
    """One line saying how the conversation ended, with the detail when there is one."""
    label = EndReason(conversation.end_reason).label if conversation.end_reason else "?"
    text = f"Conversation ended: {label} ({conversation.end_reason}, {conversation.status})"
    if conversation.end_detail:
        text += f": {conversation.end_detail}"
    return text


async def run_text_console(
    conversation: Conversation,
    plan: SessionPlan,
    *,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> Conversation:
    """Talk to the conversation's persona over ``stdin``/``stdout`` until the input ends,
    Ctrl+C, or the conversation ends on its own; returns the conversation as recorded."""
    name = conversation.persona.name
    session = AgentSession(**plan.session_kwargs)
    # Text mode: ``say`` needs no TTS, so the greeting is the persona's own words.
    runner = ConversationRunner(
        conversation=conversation, session=session, start_immediately=True, can_say=True
    )
    prompt = "You: " if stdin.isatty() else ""

    def show(event: ConversationItemAddedEvent) -> None:
        item = event.item
        if getattr(item, "role", None) == "assistant" and (text := item.text_content):
            stdout.write(f"{name}: {text}\n{prompt}")
            stdout.flush()

    session.on("conversation_item_added", show)

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
        loop.add_signal_handler(signal.SIGINT, lines.put_nowait, None)
    threading.Thread(
        target=_read_lines, args=(stdin, loop, lines), name="vw_console_stdin", daemon=True
    ).start()

    finished = asyncio.create_task(runner.wait_finished())
    try:
        await runner.start()
        # The greeting first, as in a call: what was typed meanwhile waits for it.
        await _first(_replied(session.wait_for_idle()), finished)
        while not finished.done():
            line = await _first(lines.get(), finished)
            if finished.done():
                break
            if line is None:
                runner.request_end(EndReason.CLIENT_END)
                break
            text = line.strip()
            if text:
                await _first(_replied(session.generate_reply(user_input=text)), finished)
    except Exception as exc:
        await runner.request_end(
            EndReason.ERROR, detail=f"The console failed: {type(exc).__name__}: {exc}"
        )
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    await finished
    return await Conversation.objects.select_related("persona").aget(pk=conversation.pk)


async def _replied(handle: Any) -> None:
    with contextlib.suppress(Exception):  # a failed reply is the runner's to record
        await handle


async def _first(awaitable: Any, finished: asyncio.Task) -> Any:
    """The result of ``awaitable``, or None when the conversation ends first."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.wait({task, finished}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    return None
