"""A double of ``livekit.rtc.Room`` and of the job context, for starting an avatar offline.

A real ``rtc.Room`` only exists connected to a LiveKit server, which tests cannot reach.
``RoomDouble`` implements what ``livekit-plugins-bey``'s ``AvatarSession.start`` and the
``DataStreamAudioOutput`` it installs touch: the room's name and connection state, its
events (``participant_active``, ``track_published``, ``connection_state_changed``…), the
remote participants with their track publications, and the local participant's identity,
attributes and RPC registry. ``join(identity)`` plays the avatar service's part: its
participant joins and publishes video, as a Beyond Presence avatar does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc


@dataclass
class TrackPublicationDouble:
    sid: str
    kind: int
    subscribed: bool = False
    track: Any = None


@dataclass
class RemoteParticipantDouble:
    identity: str
    kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    state: int = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
    attributes: dict[str, str] = field(default_factory=dict)
    track_publications: dict[str, TrackPublicationDouble] = field(default_factory=dict)


@dataclass
class LocalParticipantDouble:
    identity: str
    kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    attributes: dict[str, str] = field(default_factory=dict)
    track_publications: dict[str, Any] = field(default_factory=dict)
    #: Every ``set_attributes`` call, in order, so tests can check the sequence.
    attribute_history: list[dict[str, str]] = field(default_factory=list)
    _rpc_handlers: dict[str, Any] = field(default_factory=dict)

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.attribute_history.append(dict(attributes))
        self.attributes.update(attributes)

    def register_rpc_method(self, method: str, handler: Any = None) -> Any:
        self._rpc_handlers[method] = handler
        return handler

    def unregister_rpc_method(self, method: str) -> None:
        self._rpc_handlers.pop(method, None)


class RoomDouble(rtc.EventEmitter[str]):
    """A connected room, named like a conversation's room, with the agent as local participant."""

    def __init__(self, name: str = "vw-test-room", agent_identity: str = "agent-test") -> None:
        super().__init__()
        self.name = name
        self.local_participant = LocalParticipantDouble(identity=agent_identity)
        self.remote_participants: dict[str, RemoteParticipantDouble] = {}
        self._connected = True
        self._sids = 0

    def isconnected(self) -> bool:
        return self._connected

    def join(
        self,
        identity: str,
        *,
        kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT,
        publish_video: bool = True,
    ) -> RemoteParticipantDouble:
        participant = RemoteParticipantDouble(identity=identity, kind=kind)
        self.remote_participants[identity] = participant
        self.emit("participant_connected", participant)
        self.emit("participant_active", participant)
        if publish_video:
            self._sids += 1
            publication = TrackPublicationDouble(
                sid=f"TR_{self._sids}", kind=rtc.TrackKind.KIND_VIDEO
            )
            participant.track_publications[publication.sid] = publication
            self.emit("track_published", publication, participant)
        return participant


class _RoomServiceDouble:
    def __init__(self) -> None:
        self.removed: list[Any] = []

    async def remove_participant(self, request: Any) -> None:
        self.removed.append(request)


class _ApiDouble:
    def __init__(self) -> None:
        self.room = _RoomServiceDouble()


class JobContextDouble:
    """What the avatar code reads from ``get_job_context()``: identity, shutdown hooks, API."""

    def __init__(self, room: RoomDouble) -> None:
        self.room = room
        self.local_participant_identity = room.local_participant.identity
        self.shutdown_callbacks: list[Any] = []
        self.api = _ApiDouble()

    def add_shutdown_callback(self, callback: Any) -> None:
        self.shutdown_callbacks.append(callback)


@contextlib.contextmanager
def job_context(room: RoomDouble) -> Iterator[JobContextDouble]:
    """Make ``livekit.agents.get_job_context()`` return a double for the block's duration."""
    from livekit.agents.job import _JobContextVar

    ctx = JobContextDouble(room)
    token = _JobContextVar.set(ctx)  # type: ignore[arg-type]
    try:
        yield ctx
    finally:
        _JobContextVar.reset(token)
