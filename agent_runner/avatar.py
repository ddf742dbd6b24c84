"""Start a persona's avatar before the conversation, or fall back to voice only.

The avatar is started as soon as the agent joins, before ``session.start``: the agent's
speech then goes through the avatar (lips and audio stay in sync) and the widget's muted
preview shows it idling. The agent's ``voice_widget.avatar`` attribute tells the widget how
that went: ``starting``, then ``ready`` or ``failed`` (the widget shows the poster instead).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from livekit import rtc
from livekit.agents import NOT_GIVEN, APIConnectionError, APIConnectOptions, APIStatusError
from livekit.agents.voice.avatar import DataStreamAudioOutput
from livekit.plugins import bey

from voice_widget import providers as catalogue
from voice_widget.conf import vw_settings

from .credentials import provider_key

if TYPE_CHECKING:
    from livekit.agents import AgentSession

    from .pipeline import AvatarPlan, SessionPlan

logger = logging.getLogger(__name__)

AVATAR_ATTRIBUTE = "voice_widget.avatar"
STARTING, READY, FAILED = "starting", "ready", "failed"


class AvatarUnavailable(Exception):
    """The avatar cannot start; the message is the reason recorded on the conversation."""


def _api_key(provider: str) -> str:
    api_key = provider_key(provider)
    if not api_key:
        raise AvatarUnavailable(f"{catalogue.key_env_var(provider)} is not set on the worker.")
    return api_key


def _bey_avatar(avatar: AvatarPlan) -> Any:
    return bey.AvatarSession(
        avatar_id=avatar.avatar_id,
        api_key=_api_key(avatar.provider),
        api_url=avatar.api_url or NOT_GIVEN,
        conn_options=APIConnectOptions(
            max_retry=avatar.max_retry,
            retry_interval=avatar.retry_interval,
            timeout=avatar.timeout,
        ),
    )


#: Avatar provider → the function that makes its avatar session (the catalogue has the rest).
AVATAR_BUILDERS: dict[str, Callable[[AvatarPlan], Any]] = {
    catalogue.BEY: _bey_avatar,
}


def _make_avatar(avatar: AvatarPlan) -> Any:
    builder = AVATAR_BUILDERS.get(avatar.provider)
    if builder is None:
        raise AvatarUnavailable(f"Unknown avatar provider {avatar.provider!r}.")
    return builder(avatar)


def _provider_name(provider: str) -> str:
    entry = catalogue.get(provider)
    return str(entry.name) if entry else provider


def _reason(avatar: AvatarPlan, exc: BaseException) -> str:
    name = _provider_name(avatar.provider)
    if isinstance(exc, AvatarUnavailable):
        return str(exc)
    if isinstance(exc, APIStatusError):
        body = str(exc.body or "").strip().replace("\n", " ")[:200]
        detail = f": {body}" if body else ""
        return (
            f"{name} refused to start avatar {avatar.avatar_id!r} (HTTP {exc.status_code}){detail}"
        )
    if isinstance(exc, APIConnectionError | aiohttp.ClientError):
        entry = catalogue.get(avatar.provider)
        url = avatar.api_url or (entry.api_url if entry else "")
        return f"{name} could not be reached at {url}."
    return f"The {name} avatar could not start: {exc.__class__.__name__}: {exc}"


async def _set_state(room: rtc.Room, state: str) -> None:
    try:
        await room.local_participant.set_attributes({AVATAR_ATTRIBUTE: state})
    except Exception:
        logger.warning("could not set the %s attribute to %s", AVATAR_ATTRIBUTE, state)


async def start_avatar(plan: SessionPlan, session: AgentSession, room: rtc.Room) -> str | None:
    """Start the plan's avatar before ``session.start``; return why it failed, or None.

    On failure the conversation carries on voice only: the session's audio output is left
    to the room (not the avatar), the attribute says ``failed``, and the caller records the
    returned reason on the conversation.
    """
    avatar_plan = plan.avatar
    if avatar_plan is None:
        return None
    await _set_state(room, STARTING)
    name = _provider_name(avatar_plan.provider)
    avatar = None
    try:
        avatar = _make_avatar(avatar_plan)
        try:
            # The plugin only bounds connecting; a service that accepts and hangs is bounded here.
            await asyncio.wait_for(
                avatar.start(
                    session,
                    room,
                    livekit_url=vw_settings.LIVEKIT_URL,
                    livekit_api_key=vw_settings.LIVEKIT_API_KEY,
                    livekit_api_secret=vw_settings.LIVEKIT_API_SECRET,
                ),
                timeout=avatar_plan.start_timeout,
            )
        except TimeoutError as exc:
            raise AvatarUnavailable(
                f"{name} did not answer within {avatar_plan.start_timeout:g} s."
            ) from exc
        try:
            await avatar.wait_for_join(timeout=avatar_plan.join_timeout)
        except TimeoutError as exc:
            raise AvatarUnavailable(
                f"The {name} avatar did not join the room within {avatar_plan.join_timeout:g} s."
            ) from exc
    except Exception as exc:
        reason = _reason(avatar_plan, exc)
        logger.warning(
            "avatar failed to start, continuing voice only",
            extra={"provider": avatar_plan.provider, "error": exc.__class__.__name__},
        )
        if isinstance(session.output.audio, DataStreamAudioOutput):
            # Give the audio back to the room: otherwise speech waits for an absent avatar.
            session.output.audio = None
        if avatar is not None:
            await _close_quietly(avatar)
        await _set_state(room, FAILED)
        return reason
    await _set_state(room, READY)
    return None


async def _close_quietly(avatar: Any) -> None:
    try:
        await asyncio.wait_for(avatar.aclose(), timeout=5)
    except Exception:
        logger.debug("closing the failed avatar session raised", exc_info=True)
