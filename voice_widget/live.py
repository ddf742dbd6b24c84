"""Live conversations: what the worker's publisher and the admin's live page share.

The worker's transcript recorder publishes each saved batch of turns to a channel-layer
group named after the conversation; the live page's websocket consumer joins that group.
That only carries turns from the worker (another process) to a web process when the channel
layer is cross-process (channels_redis). Without one (no ``CHANNEL_LAYERS``, or channels'
in-memory layer) the consumer reads new ``Turn`` rows itself, every ``POLL_INTERVAL``
seconds: :func:`layer_mode` says which mode is in force.

Ending a conversation from the live page travels the other way through LiveKit, not the
channel layer: the web side sends a data packet on ``CONTROL_TOPIC`` to the room (livekit-api's
``RoomService.SendData``) and the agent, listening on the room, ends it (``staff_end``).

Nothing here imports LiveKit: web processes and the worker both import it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer

#: Seconds between the consumer's reads of the database: new turns in polling mode, and the
#: conversation's status in both modes.
POLL_INTERVAL = 1.0
#: With a cross-process layer the consumer still reads the database this often (seconds), so
#: turns whose publication was lost (Redis away from the worker) appear all the same.
CATCH_UP_INTERVAL = 5.0
#: After a conversation ended, its last lines (the closing line, saved when the session has
#: closed) are still looked for this long (seconds).
ENDED_GRACE = 30.0

#: Topic of the web side's data packets to the agent (``RoomService.SendData``).
CONTROL_TOPIC = "voice_widget.control"
CONTROL_END = "end"

#: Channel-layer message type of a batch of turns (the consumer's ``live_turns`` handler).
TURNS_MESSAGE = "live.turns"

LayerMode = Literal["channel_layer", "polling"]


def group_name(conversation_id: uuid.UUID | str) -> str:
    """The channel-layer group of one conversation's live transcript."""
    return f"voice_widget.live.{uuid.UUID(str(conversation_id)).hex}"


def live_layer() -> BaseChannelLayer | None:
    """The channel layer, when it can carry messages between processes; else None."""
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return None
    return layer


def layer_mode() -> LayerMode:
    """``channel_layer``: turns are pushed by the worker; ``polling``: read from the database."""
    return "channel_layer" if live_layer() is not None else "polling"


def turn_data(
    *,
    sequence: int,
    role: str,
    text: str,
    interrupted: bool,
    created_at: Any,
) -> dict[str, Any]:
    """One transcript line as the live page receives it (JSON-serialisable)."""
    return {
        "sequence": int(sequence),
        "role": str(role),
        "text": str(text),
        "interrupted": bool(interrupted),
        "time": created_at.isoformat() if hasattr(created_at, "isoformat") else str(created_at),
    }


def turns_message(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The channel-layer message for a batch of lines (each from :func:`turn_data`)."""
    return {"type": TURNS_MESSAGE, "turns": turns}


def end_control(conversation_id: uuid.UUID | str) -> bytes:
    """The data packet's payload asking the agent of ``conversation_id`` to end it."""
    return json.dumps({"action": CONTROL_END, "conversation": str(conversation_id)}).encode()


def parse_control(payload: bytes) -> dict[str, str] | None:
    """A control packet's payload as a dict with ``action`` and ``conversation``, or None."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    action, conversation = data.get("action"), data.get("conversation")
    if not isinstance(action, str) or not isinstance(conversation, str):
        return None
    return {"action": action, "conversation": conversation}
