"""Server-side calls to LiveKit's API for a conversation's room (livekit-api's Twirp clients).

The web process talks to LiveKit only here, and only on a best-effort basis where the
visitor is waiting: a LiveKit outage must never turn a visitor's request into an error.
Every call has its own deadline (``API_TIMEOUT``): livekit-api 1.2.2 passes ``timeout=None``
to aiohttp on each request, which overrides the session's timeout, so a LiveKit server that
accepts a connection and never answers would otherwise hold the caller for ever.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import aiohttp
from asgiref.sync import async_to_sync
from django.db import connections
from livekit import api

from .conf import vw_settings
from .tokens import dev_secret_warning_silenced, dispatch_metadata

logger = logging.getLogger(__name__)

#: Seconds a best-effort call may take before we give up (the visitor is waiting).
API_TIMEOUT = 5


def _client() -> api.LiveKitAPI:
    return api.LiveKitAPI(
        vw_settings.LIVEKIT_URL,
        vw_settings.LIVEKIT_API_KEY,
        vw_settings.LIVEKIT_API_SECRET,
        timeout=aiohttp.ClientTimeout(total=API_TIMEOUT),
    )


async def _adelete_room(room_name: str) -> None:
    async with asyncio.timeout(API_TIMEOUT), _client() as lkapi:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room_name))


def delete_room(room_name: str) -> bool:
    """Delete ``room_name`` on the LiveKit server, disconnecting everyone; True on success.

    Errors (server down, room already gone, bad credentials) are logged and swallowed:
    the conversation is already marked ended, and LiveKit closes an empty room by itself
    after ``ROOM_EMPTY_TIMEOUT`` / ``ROOM_DEPARTURE_TIMEOUT``.
    """
    if not vw_settings.livekit_configured:
        return False
    try:
        with dev_secret_warning_silenced():
            async_to_sync(_adelete_room)(room_name)
    except Exception as exc:  # best effort by design: never raised to the visitor
        logger.warning("could not delete LiveKit room %s: %s", room_name, _describe(exc))
        return False
    return True


def delete_room_in_background(room_name: str) -> threading.Thread:
    """Delete ``room_name`` in a daemon thread, so no request waits for LiveKit.

    The thread never touches the database; it closes any connection Django may have
    opened for it, so a stalled LiveKit holds neither a request nor a connection.
    """
    thread = threading.Thread(
        target=_delete_room_detached, args=(room_name,), name="voice-widget-delete-room"
    )
    thread.daemon = True
    thread.start()
    return thread


def _delete_room_detached(room_name: str) -> None:
    try:
        delete_room(room_name)
    finally:
        connections.close_all()


async def _adispatch_agent(room_name: str, conversation_id: Any) -> api.AgentDispatch:
    async with asyncio.timeout(API_TIMEOUT), _client() as lkapi:
        return await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=vw_settings.AGENT_NAME,
                room=room_name,
                metadata=dispatch_metadata(conversation_id),
            )
        )


def dispatch_agent(room_name: str, conversation_id: Any) -> api.AgentDispatch:
    """Dispatch our agent into a room that already exists, e.g. to rejoin a conversation.

    A token's ``RoomAgentDispatch`` only applies when that token creates the room, so
    anything that brings the agent back into an existing room must go through
    AgentDispatchService instead. Raises livekit-api's errors, or ``TimeoutError`` after
    ``API_TIMEOUT`` seconds (logged): the caller decides.
    """
    try:
        with dev_secret_warning_silenced():
            return async_to_sync(_adispatch_agent)(room_name, conversation_id)
    except TimeoutError:
        logger.warning("LiveKit did not answer the agent dispatch into room %s", room_name)
        raise


async def _asend_data(room_name: str, payload: bytes, topic: str) -> None:
    async with asyncio.timeout(API_TIMEOUT), _client() as lkapi:
        await lkapi.room.send_data(
            api.SendDataRequest(
                room=room_name, data=payload, kind=api.DataPacket.Kind.RELIABLE, topic=topic
            )
        )


def send_data(room_name: str, payload: bytes, *, topic: str) -> str | None:
    """Send a reliable data packet from the server to everyone in ``room_name``
    (``RoomService.SendData``); None on success, else why it failed, in a line (also logged).

    Participants see it as sent by the server (no sender), which is how the agent tells the
    web side's packets from anything a visitor could send on the same topic.
    """
    if not vw_settings.livekit_configured:
        return "LiveKit is not configured"
    try:
        with dev_secret_warning_silenced():
            async_to_sync(_asend_data)(room_name, payload, topic)
    except Exception as exc:
        problem = _describe(exc)
        logger.warning("could not send %s to LiveKit room %s: %s", topic, room_name, problem)
        return problem
    return None


async def _aagent_in_room(room_name: str) -> bool:
    async with asyncio.timeout(API_TIMEOUT), _client() as lkapi:
        answer = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room_name))
    return any(p.kind == api.ParticipantInfo.Kind.AGENT for p in answer.participants)


def agent_in_room(room_name: str) -> bool | None:
    """Whether an agent participant is in ``room_name``; None when LiveKit cannot tell us
    (server down, no such room, a server without RoomService): logged, never raised."""
    if not vw_settings.livekit_configured:
        return None
    try:
        with dev_secret_warning_silenced():
            return async_to_sync(_aagent_in_room)(room_name)
    except Exception as exc:  # best effort: the visitor is waiting to rejoin
        logger.warning("could not list the participants of room %s: %s", room_name, _describe(exc))
        return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {API_TIMEOUT} s"
    if isinstance(exc, api.ServerError):
        return f"LiveKit answered {exc.status} {exc.code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
