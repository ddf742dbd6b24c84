"""Version 1 of the widget ↔ agent protocol (see the README), on the agent's side.

Everything here talks to the LiveKit room through a few ``rtc.Room`` /
``rtc.LocalParticipant`` calls (attributes, RPC), so a test can hand in a double.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = "1"

RPC_START = "voice_widget.start"
RPC_END = "voice_widget.end"
RPC_ENDED = "voice_widget.ended"

ATTR_PROTOCOL = "voice_widget.protocol"
ATTR_STARTED = "voice_widget.started"
ATTR_END_REASON = "voice_widget.end_reason"

#: How long the best-effort ``voice_widget.ended`` RPC may take.
ENDED_RPC_TIMEOUT = 2.0
#: How long a call that arrives before the conversation is ready waits for it. Shorter than
#: the widget's RPC timeout, so the widget hears ``not_ready`` and retries instead of timing out.
READY_WAIT_TIMEOUT = 6.0


def ok() -> str:
    return json.dumps({"ok": True})


def error(code: str, detail: str) -> str:
    return json.dumps({"ok": False, "error": code, "detail": detail})


def parse_payload(payload: str) -> dict[str, Any] | None:
    """The RPC payload as a dict (empty payload → ``{}``), or None when it is not a JSON object."""
    if not (payload or "").strip():
        return {}
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


RpcHandler = Callable[[Any], Awaitable[str]]


class RoomSignals:
    """The agent's side of the protocol in one room: attributes and RPC."""

    def __init__(self, room: Any) -> None:
        self.room = room

    @property
    def local_participant(self) -> Any:
        return self.room.local_participant

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        try:
            await self.local_participant.set_attributes(attributes)
        except Exception as exc:  # the room may already be gone
            logger.warning("could not set agent attributes %s: %s", sorted(attributes), exc)

    def register(self, method: str, handler: RpcHandler) -> None:
        self.local_participant.register_rpc_method(method, handler)

    async def announce_ready(self, *, started: bool = False) -> None:
        """``voice_widget.protocol`` on the agent: ready for ``voice_widget.start``; with
        ``started``, also ``voice_widget.started``: listening and greeting already, so the
        widget needs no ``voice_widget.start`` (one update, so it never sees one without
        the other)."""
        attributes = {ATTR_PROTOCOL: PROTOCOL_VERSION}
        if started:
            attributes[ATTR_STARTED] = "1"
        await self.set_attributes(attributes)

    async def announce_started(self) -> None:
        """``voice_widget.started`` on the agent: the conversation has started (a widget
        that rejoins after a reload needs no ``voice_widget.start``)."""
        await self.set_attributes({ATTR_STARTED: "1"})

    async def announce_end(self, reason: str, visitor_identity: str | None) -> None:
        """Set ``voice_widget.end_reason`` and tell the visitor by RPC (best effort)."""
        await self.set_attributes({ATTR_END_REASON: reason})
        if not visitor_identity or visitor_identity not in self._remote_identities():
            return
        try:
            await asyncio.wait_for(
                self.local_participant.perform_rpc(
                    destination_identity=visitor_identity,
                    method=RPC_ENDED,
                    payload=json.dumps({"reason": reason}),
                    response_timeout=ENDED_RPC_TIMEOUT,
                ),
                timeout=ENDED_RPC_TIMEOUT + 0.5,
            )
        except Exception as exc:  # older widgets do not answer; the attribute is enough
            logger.debug("voice_widget.ended RPC not answered: %s", exc)

    def _remote_identities(self) -> set[str]:
        participants = getattr(self.room, "remote_participants", None) or {}
        return {getattr(p, "identity", "") for p in participants.values()}


class AgentEndpoint:
    """The agent's RPC methods, callable from the moment it has joined the room.

    ``open()`` registers ``voice_widget.start`` and ``voice_widget.end`` right after
    ``ctx.connect()``, before anything slow (database, session, avatar), so the widget never
    meets "method not supported". A call that arrives before the conversation is ready waits
    for ``serve()`` (at most ``ready_timeout``, then ``not_ready``, which the widget retries);
    after ``close()`` every call answers ``ended`` with the reason.
    """

    def __init__(self, signals: RoomSignals, *, ready_timeout: float = READY_WAIT_TIMEOUT) -> None:
        self.signals = signals
        self.ready_timeout = ready_timeout
        self._handlers: dict[str, RpcHandler] = {}
        self._settled = asyncio.Event()
        self._closed_detail: str | None = None

    def open(self) -> None:
        for method in (RPC_START, RPC_END):
            self.signals.register(method, self._handler_for(method))

    def serve(self, handlers: dict[str, RpcHandler]) -> None:
        """The conversation is ready: calls (also those waiting) go to ``handlers``."""
        self._handlers = dict(handlers)
        self._settled.set()

    def close(self, detail: str = "This conversation has ended.") -> None:
        """The conversation is over (or never started): calls answer ``ended``."""
        if self._closed_detail is None:
            self._closed_detail = detail
        self._settled.set()

    def _handler_for(self, method: str) -> RpcHandler:
        async def handle(data: Any) -> str:
            return await self.dispatch(method, data)

        return handle

    async def dispatch(self, method: str, data: Any) -> str:
        if not self._settled.is_set():
            try:
                await asyncio.wait_for(self._settled.wait(), timeout=self.ready_timeout)
            except TimeoutError:
                return error("not_ready", "The agent is still getting ready; try again.")
        if self._closed_detail is not None:
            return error("ended", self._closed_detail)
        return await self._handlers[method](data)
