"""Participant tokens: one LiveKit JWT per conversation that also dispatches our agent.

The token lets its holder join one room, publish the microphone only, subscribe and
send data. It carries a ``RoomConfiguration`` whose ``RoomAgentDispatch`` names our
worker, so the LiveKit server dispatches the agent when this token creates the room.
LiveKit ignores a token's room configuration for a room that already exists, which is
why every conversation gets a fresh, random room name (see ``new_room_name``).
"""

from __future__ import annotations

import json
import secrets
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from livekit.api import AccessToken, RoomAgentDispatch, RoomConfiguration, VideoGrants

from .conf import DEV_LIVEKIT_API_SECRET, vw_settings

try:
    from jwt.warnings import InsecureKeyLengthWarning
except ImportError:  # PyJWT before 2.10 does not warn about short keys
    InsecureKeyLengthWarning = None

#: The only track source a visitor may publish.
VISITOR_PUBLISH_SOURCES = ["microphone"]


@dataclass(frozen=True)
class ParticipantToken:
    jwt: str
    expires_at: datetime


def new_room_name() -> str:
    """A room name never used before: LiveKit dispatches a token's agent only into a new room."""
    return f"vw-{secrets.token_urlsafe(12)}"


def new_identity(user: Any = None) -> str:
    """``visitor-<random>``, or ``user-<pk>-<random>`` for a logged-in user.

    The random part keeps two tabs of the same user from kicking each other out of
    LiveKit (identities must be unique within a room, and rooms are per conversation
    anyway, but identities also show up in LiveKit's analytics).
    """
    suffix = secrets.token_hex(6)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user-{user.pk}-{suffix}"
    return f"visitor-{suffix}"


def dispatch_metadata(conversation_id: uuid.UUID | str, *, clicked: bool = False) -> str:
    """The job metadata the worker receives: the conversation id, and ``"clicked": true``
    when the visitor had already clicked to talk (the agent then greets as soon as its
    session runs, without waiting for ``voice_widget.start``)."""
    metadata: dict[str, Any] = {"conversation": str(conversation_id)}
    if clicked:
        metadata["clicked"] = True
    return json.dumps(metadata)


def visitor_grants(room_name: str) -> VideoGrants:
    """Join this one room, publish the microphone only, subscribe, send data; nothing else."""
    return VideoGrants(
        room_join=True,
        room=room_name,
        can_publish=True,
        can_publish_sources=list(VISITOR_PUBLISH_SOURCES),
        can_subscribe=True,
        can_publish_data=True,
    )


def room_configuration(
    room_name: str, conversation_id: uuid.UUID | str, *, clicked: bool = False
) -> RoomConfiguration:
    """Room limits from settings plus the dispatch of our agent with the conversation id."""
    return RoomConfiguration(
        name=room_name,
        empty_timeout=vw_settings.ROOM_EMPTY_TIMEOUT,
        departure_timeout=vw_settings.ROOM_DEPARTURE_TIMEOUT,
        max_participants=vw_settings.ROOM_MAX_PARTICIPANTS,
        agents=[
            RoomAgentDispatch(
                agent_name=vw_settings.AGENT_NAME,
                metadata=dispatch_metadata(conversation_id, clicked=clicked),
            )
        ],
    )


@contextmanager
def dev_secret_warning_silenced() -> Iterator[None]:
    """Keep PyJWT quiet about livekit-server --dev's 6-byte secret while we sign with it.

    Every dev token would print "The HMAC key is 6 bytes long"; that pair only serves a
    local dev server (``voice_widget.E003`` refuses it with DEBUG off). Any other short
    secret still warns.
    """
    if InsecureKeyLengthWarning is None or vw_settings.LIVEKIT_API_SECRET != DEV_LIVEKIT_API_SECRET:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        yield


def mint_participant_token(
    *,
    room_name: str,
    identity: str,
    conversation_id: uuid.UUID | str,
    display_name: str = "",
    dispatch: bool = True,
    clicked: bool = False,
) -> ParticipantToken:
    """Sign the visitor's token for ``room_name`` with the configured API key and secret.

    ``dispatch=False`` leaves out the room configuration (with its agent dispatch): a token
    to rejoin a room that exists, where LiveKit would ignore it anyway. ``clicked`` goes
    into the dispatch's metadata: the visitor already clicked, so the agent starts at once.
    """
    ttl = timedelta(seconds=vw_settings.TOKEN_TTL)
    # AccessToken stamps exp with whole seconds from "now"; computing ours the same
    # way (and first) keeps expires_at from claiming more time than the token has.
    now = datetime.now(UTC).replace(microsecond=0)
    token = (
        AccessToken(vw_settings.LIVEKIT_API_KEY, vw_settings.LIVEKIT_API_SECRET)
        .with_identity(identity)
        .with_name(display_name)
        .with_ttl(ttl)
        .with_grants(visitor_grants(room_name))
    )
    if dispatch:
        token = token.with_room_config(
            room_configuration(room_name, conversation_id, clicked=clicked)
        )
    with dev_secret_warning_silenced():
        jwt = token.to_jwt()
    return ParticipantToken(jwt=jwt, expires_at=now + ttl)
