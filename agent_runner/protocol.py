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
ATTR_END_REASON = "voice_widget.end_reason"
ATTR_AVATAR = "voice_widget.avatar"

#: How long the best-effort ``voice_widget.ended`` RPC may take.
ENDED_RPC_TIMEOUT = 2.0


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

    async def announce_protocol(self) -> None:
        await self.set_attributes({ATTR_PROTOCOL: PROTOCOL_VERSION})

    def register(self, method: str, handler: RpcHandler) -> None:
        self.local_participant.register_rpc_method(method, handler)

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
