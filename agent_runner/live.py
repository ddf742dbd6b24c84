"""The worker's side of the admin's live conversation page.

:class:`LivePublisher` sends each batch of transcript lines the recorder has saved to the
conversation's channel-layer group, where the page's websocket consumer picks it up. It is
best effort and must never slow or break recording: ``publish`` only queues (a bounded
queue, dropping when full), one background task sends with a deadline per message, and the
first failure is logged once (the page still finds the lines in the database). With no
cross-process channel layer configured it does nothing: the page then reads the database.

:func:`listen_for_staff_end` lets an editor end the conversation from that page: the web side
sends a data packet on ``voice_widget.live.CONTROL_TOPIC`` through LiveKit's
``RoomService.SendData``, which participants see as coming from the server (no sender).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from voice_widget import live
from voice_widget.models import EndReason

logger = logging.getLogger(__name__)

#: Longest a single publication may take (seconds), e.g. while Redis does not answer.
PUBLISH_TIMEOUT = 2.0
#: Batches waiting to be published at most; more are dropped (the page reads the database).
QUEUE_LIMIT = 100


class LivePublisher:
    """Publishes one conversation's saved lines to its live group (see the module doc)."""

    def __init__(self, conversation_id: uuid.UUID | str, *, layer: Any = None) -> None:
        self.conversation_id = conversation_id
        self.layer = layer if layer is not None else live.live_layer()
        self.group = live.group_name(conversation_id)
        self.published = 0
        self.dropped = 0
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._sender: asyncio.Task[None] | None = None
        self._complained = False

    @property
    def enabled(self) -> bool:
        return self.layer is not None

    def publish(self, lines: Iterable[Any]) -> None:
        """Queue saved lines (``sequence``, ``role``, ``text``, ``interrupted``,
        ``created_at``); never blocks, never raises."""
        if self.layer is None:
            return
        try:
            message = live.turns_message(
                [
                    live.turn_data(
                        sequence=line.sequence,
                        role=line.role,
                        text=line.text,
                        interrupted=line.interrupted,
                        created_at=line.created_at,
                    )
                    for line in lines
                ]
            )
            self._queue.put_nowait(message)
            if self._sender is None or self._sender.done():
                self._sender = asyncio.get_running_loop().create_task(
                    self._send_loop(), name="vw_live_publisher"
                )
        except asyncio.QueueFull:
            self.dropped += 1
            self._complain("its queue is full")
        except Exception as exc:  # e.g. no running loop: recording goes on regardless
            self.dropped += 1
            self._complain(f"{type(exc).__name__}: {exc}")

    async def _send_loop(self) -> None:
        while not self._queue.empty():
            message = self._queue.get_nowait()
            try:
                await asyncio.wait_for(
                    self.layer.group_send(self.group, message), timeout=PUBLISH_TIMEOUT
                )
            except Exception as exc:
                self.dropped += 1
                problem = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
                self._complain(f"{problem}: {exc}" if str(exc) else problem)
            else:
                self.published += 1

    def _complain(self, problem: str) -> None:
        if not self._complained:
            self._complained = True
            logger.warning(
                "conversation %s: the live page did not get new transcript lines through the"
                " channel layer (%s); it still reads them from the database every %s s."
                " Further failures are not logged.",
                self.conversation_id,
                problem,
                live.CATCH_UP_INTERVAL,
            )

    async def aclose(self) -> None:
        """Give queued publications ``PUBLISH_TIMEOUT`` to go out, then stop."""
        if self._sender is None or self._sender.done():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._sender), timeout=PUBLISH_TIMEOUT)
        if not self._sender.done():
            self._sender.cancel()


def listen_for_staff_end(
    room: Any, conversation_id: uuid.UUID | str, request_end: Callable[..., Any]
) -> None:
    """End the conversation (``staff_end``) when the web side asks through the room."""

    def on_data(packet: Any) -> None:
        if getattr(packet, "topic", None) != live.CONTROL_TOPIC:
            return
        if getattr(packet, "participant", None) is not None:
            # Only the server (RoomService.SendData) may send these; a visitor cannot.
            logger.warning(
                "conversation %s: control packet from a participant ignored", conversation_id
            )
            return
        control = live.parse_control(bytes(getattr(packet, "data", b"")))
        if control is None or control["conversation"] != str(conversation_id):
            logger.warning("conversation %s: unreadable control packet ignored", conversation_id)
            return
        if control["action"] == live.CONTROL_END:
            logger.info("conversation %s: ended from the live page", conversation_id)
            request_end(EndReason.STAFF_END)

    room.on("data_received", on_data)
