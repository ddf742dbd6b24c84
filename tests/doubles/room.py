"""``DoubleRoom``: the few ``rtc.Room`` / ``rtc.LocalParticipant`` calls the worker makes.

Attributes, RPC registration, RPC calls to the visitor and room events are recorded so a
test can call ``voice_widget.start`` the way the widget would and see what the agent did;
``receive_data`` delivers a data packet (from the server or a participant).
"""

from __future__ import annotations

import inspect
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit import rtc


@dataclass
class DoubleParticipant:
    identity: str
    kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD


class DoubleLocalParticipant:
    def __init__(self, identity: str = "agent-double") -> None:
        self.identity = identity
        self.attributes: dict[str, str] = {}
        self.rpc_handlers: dict[str, Callable[..., Any]] = {}
        self.rpc_calls: list[dict[str, Any]] = []
        #: What the visitor answers per method: a string, an exception to raise, or a
        #: callable taking the parsed payload and returning either (default: ``""``).
        self.rpc_answers: dict[str, Any] = {}

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.attributes.update(attributes)

    def register_rpc_method(self, method: str, handler: Callable[..., Any]) -> None:
        self.rpc_handlers[method] = handler

    async def perform_rpc(
        self,
        *,
        destination_identity: str,
        method: str,
        payload: str,
        response_timeout: float | None = None,
    ) -> str:
        parsed = json.loads(payload)
        self.rpc_calls.append(
            {
                "destination": destination_identity,
                "method": method,
                "payload": parsed,
                "response_timeout": response_timeout,
            }
        )
        answer = self.rpc_answers.get(method, "")
        if callable(answer):
            answer = answer(parsed)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class DoubleRoom:
    def __init__(self, *, visitor: str | None = None) -> None:
        self.name = "room-double"
        self.local_participant = DoubleLocalParticipant()
        self.remote_participants: dict[str, DoubleParticipant] = {}
        self._handlers: dict[str, list[Callable[..., Any]]] = defaultdict(list)
        if visitor:
            self.join(visitor)

    def on(self, event: str, callback: Callable[..., Any] | None = None) -> Any:
        if callback is None:
            return lambda fn: self.on(event, fn)
        self._handlers[event].append(callback)
        return callback

    def join(self, identity: str) -> DoubleParticipant:
        participant = DoubleParticipant(identity)
        self.remote_participants[f"PA_{identity}"] = participant
        for handler in self._handlers["participant_connected"]:
            handler(participant)
        return participant

    def leave(self, identity: str) -> None:
        participant = self.remote_participants.pop(f"PA_{identity}")
        for handler in self._handlers["participant_disconnected"]:
            handler(participant)

    def receive_data(self, payload: bytes, *, topic: str, sender: str | None = None) -> None:
        """A data packet arrives, as ``rtc.Room`` emits it: ``sender`` None is the server
        (``RoomService.SendData``), else a participant of the room."""
        participant = None
        if sender is not None:
            participant = next(p for p in self.remote_participants.values() if p.identity == sender)
        packet = rtc.DataPacket(
            data=payload,
            kind=rtc.DataPacketKind.KIND_RELIABLE,
            participant=participant,
            topic=topic,
        )
        for handler in self._handlers["data_received"]:
            handler(packet)

    async def call_rpc(self, method: str, *, caller: str, payload: Any = None) -> dict[str, Any]:
        """Invoke the agent's RPC handler as the LiveKit SDK would; returns the parsed answer."""
        handler = self.local_participant.rpc_handlers[method]
        data = rtc.RpcInvocationData(
            request_id="rpc-double",
            caller_identity=caller,
            payload=payload if isinstance(payload, str) else json.dumps(payload or {}),
            response_timeout=10.0,
        )
        answer = handler(data)
        if inspect.isawaitable(answer):
            answer = await answer
        return json.loads(answer)
