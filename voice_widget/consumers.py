"""The live page's websocket: one conversation's transcript, turn by turn, for staff only.

On connect it sends the transcript so far, then every new line: pushed by the worker through
the channel layer when that is cross-process (channels_redis), read from the database every
``POLL_INTERVAL`` seconds otherwise (see :mod:`voice_widget.live`). Lines carry their
sequence number and each is sent once, whichever way it came.

Messages to the browser (JSON): ``{"type": "hello", "mode", "status", "end_reason"}``,
``{"type": "turns", "turns": [{sequence, role, text, interrupted, time}]}`` and
``{"type": "status", "status", "end_reason", "end_reason_label"}`` when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone

from . import live
from .models import Conversation, ConversationStatus, EndReason, Turn

logger = logging.getLogger(__name__)

#: Close codes (4000-4999 are the application's): not allowed, no such conversation.
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
#: Most lines sent in one message (a long transcript goes in several).
BATCH = 200


def _may_watch(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("voice_widget.view_conversation")
    )


class LiveConversationConsumer(AsyncWebsocketConsumer):
    """``ws/live/<conversation_id>/``: staff with the view permission on conversations."""

    conversation_id: uuid.UUID
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await sync_to_async(_may_watch)(user):
            logger.info("live page socket refused: not staff with view permission")
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        state = await self._state()
        if state is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.last_sequence = 0
        self.status = state
        self.mode = live.layer_mode()
        if self.mode == "channel_layer":
            # Joined before the first read, so a line saved meanwhile arrives one way or the other.
            self.group = live.group_name(self.conversation_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "mode": self.mode, **state})
        await self._read_new_turns()
        if await self._still_changing():
            self._watcher = asyncio.create_task(self._watch_or_close(), name="vw_live_watch")

    async def disconnect(self, code: int) -> None:
        watcher = getattr(self, "_watcher", None)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing; ending goes through the admin's form (CSRF, permission)."""

    # -- from the worker, through the channel layer -------------------------------------

    async def live_turns(self, message: dict[str, Any]) -> None:
        await self._send_turns(list(message.get("turns") or []))

    # -- from the database ------------------------------------------------------------

    async def _watch_or_close(self) -> None:
        try:
            await self._watch()
        except asyncio.CancelledError:
            raise
        except Exception:
            # E.g. the database went away: the page reconnects and starts from what it has.
            logger.warning(
                "live page of conversation %s: reading the database failed",
                self.conversation_id,
                exc_info=True,
            )
            await self.close(code=1011)

    async def _watch(self) -> None:
        catch_up_every = 1 if self.mode == "polling" else live.CATCH_UP_INTERVAL
        last_read = time.monotonic()
        ended_at: float | None = None if self._is_open(self.status) else time.monotonic()
        while True:
            await asyncio.sleep(live.POLL_INTERVAL)
            state = await self._state()
            if state is not None and state != self.status:
                self.status = state
                await self.send_json({"type": "status", **state})
                if ended_at is None and not self._is_open(state):
                    ended_at = time.monotonic()
            now = time.monotonic()
            if now - last_read >= catch_up_every or ended_at is not None:
                last_read = now
                await self._read_new_turns()
            if ended_at is not None and now - ended_at > live.ENDED_GRACE:
                return  # the record is complete; the page keeps what it has

    async def _read_new_turns(self) -> None:
        while True:
            rows = [
                live.turn_data(
                    sequence=turn.sequence,
                    role=turn.role,
                    text=turn.text,
                    interrupted=turn.interrupted,
                    created_at=turn.created_at,
                )
                async for turn in Turn.objects.filter(
                    conversation_id=self.conversation_id, sequence__gt=self.last_sequence
                ).order_by("sequence")[:BATCH]
            ]
            await self._send_turns(rows)
            if len(rows) < BATCH:
                return

    async def _send_turns(self, turns: list[dict[str, Any]]) -> None:
        fresh = sorted(
            (turn for turn in turns if int(turn.get("sequence", 0)) > self.last_sequence),
            key=lambda turn: turn["sequence"],
        )
        if not fresh:
            return
        self.last_sequence = fresh[-1]["sequence"]
        await self.send_json({"type": "turns", "turns": fresh})

    async def _state(self) -> dict[str, str] | None:
        row = (
            await Conversation.objects.filter(pk=self.conversation_id)
            .values("status", "end_reason")
            .afirst()
        )
        if row is None:
            return None
        reason = row["end_reason"] or ""
        label = str(EndReason(reason).label) if reason in EndReason.values else reason
        return {"status": row["status"], "end_reason": reason, "end_reason_label": label}

    async def _still_changing(self) -> bool:
        """Open, or ended so recently that its last lines may still be saved."""
        ended_at = (
            await Conversation.objects.filter(pk=self.conversation_id)
            .values_list("ended_at", flat=True)
            .afirst()
        )
        if ended_at is None or self._is_open(self.status):
            return True
        return (timezone.now() - ended_at).total_seconds() < live.ENDED_GRACE

    @staticmethod
    def _is_open(state: dict[str, str]) -> bool:
        return state["status"] not in (ConversationStatus.ENDED, ConversationStatus.FAILED)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))
