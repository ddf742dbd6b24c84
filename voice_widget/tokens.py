"""Participant tokens: one LiveKit JWT per conversation that also dispatches our agent.

The token lets its holder join one room, publish the microphone only, subscribe and
send data. It carries a ``RoomConfiguration`` whose ``RoomAgentDispatch`` names our
worker, so the LiveKit server dispatches the agent when this token creates the room.
LiveKit ignores a token's room configuration for a room that already exists, which is
why every conversation gets a fresh, random room name (see ``new_room_name``).
"""

from __future__ import annotations

import calendar
import json
import secrets
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from livekit.api import RoomAgentDispatch, RoomConfiguration, VideoGrants
from livekit.api.access_token import Claims

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

    The claims are those livekit-api's ``AccessToken`` writes, key for key and in its order
    (``tests/test_tokens.py`` compares the two byte for byte). Only the room, the identity,
    the conversation and the times change between tokens, so the rest is built by
    livekit-api once per set of settings (``_claims_template``) and copied here: converting
    the room configuration's protobuf to a dict was half of the time of each token.
    """
    # Already falling back to LiveKit's environment variables, as AccessToken would.
    api_key = vw_settings.LIVEKIT_API_KEY
    api_secret = vw_settings.LIVEKIT_API_SECRET
    if not api_key or not api_secret:
        raise ValueError("api_key and api_secret must be set")
    if not identity or not room_name:
        raise ValueError("identity and room must be set when joining a room")
    template = _claims_template(
        display_name,
        dispatch,
        vw_settings.ROOM_EMPTY_TIMEOUT,
        vw_settings.ROOM_DEPARTURE_TIMEOUT,
        vw_settings.ROOM_MAX_PARTICIPANTS,
        vw_settings.AGENT_NAME,
    )
    claims = dict(template)
    claims["video"] = {**template["video"], "room": room_name}
    if dispatch:
        config = template["roomConfig"]
        agent = {
            **config["agents"][0],
            "metadata": dispatch_metadata(conversation_id, clicked=clicked),
        }
        claims["roomConfig"] = {**config, "name": room_name, "agents": [agent]}
    ttl = timedelta(seconds=vw_settings.TOKEN_TTL)
    # As AccessToken.to_jwt stamps them: whole seconds from "now". expires_at is computed
    # from the same instant, so it never claims more time than the token has.
    now = datetime.now(UTC)
    claims["sub"] = identity
    claims["iss"] = api_key
    claims["nbf"] = calendar.timegm(now.utctimetuple())
    claims["exp"] = calendar.timegm((now + ttl).utctimetuple())
    with dev_secret_warning_silenced():
        token = jwt.encode(claims, api_secret, algorithm="HS256")
    return ParticipantToken(jwt=token, expires_at=now.replace(microsecond=0) + ttl)


#: Stands in for the per-token values while the template is built; never in a token.
_PLACEHOLDER = "placeholder"


@lru_cache(maxsize=32)
def _claims_template(
    display_name: str,
    dispatch: bool,
    empty_timeout: int,
    departure_timeout: int,
    max_participants: int,
    agent_name: str,
) -> dict[str, Any]:
    """The claims livekit-api's ``AccessToken`` writes for these settings, with placeholders
    for the room and the conversation (the caller replaces them, and copies what it changes;
    the template itself is shared and never changed)."""
    claims = Claims(name=display_name, video=visitor_grants(_PLACEHOLDER))
    if dispatch:
        claims.room_config = RoomConfiguration(
            name=_PLACEHOLDER,
            empty_timeout=empty_timeout,
            departure_timeout=departure_timeout,
            max_participants=max_participants,
            agents=[RoomAgentDispatch(agent_name=agent_name, metadata=_PLACEHOLDER)],
        )
    return claims.asdict()
