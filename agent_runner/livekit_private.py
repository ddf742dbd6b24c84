"""The livekit-agents internals (and deprecated parts) the worker still relies on, all here.

Everything else goes through livekit-agents' public surface. What is here has no public
equivalent in livekit-agents 1.8.9; ``tests/test_livekit_private.py`` checks every name in
``PRIVATE_NAMES`` and ``DEPRECATED_NAMES`` against the installed version, so an upgrade that
renames, reshapes or removes one fails in CI, not in a running worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livekit.agents import AgentServer, AgentSession

#: Every private livekit-agents name used by agent_runner, as "module:qualified.name".
PRIVATE_NAMES = ("livekit.agents.worker:AgentServer._connecting",)
#: Deprecated livekit-agents names used by agent_runner (same form).
DEPRECATED_NAMES = ("livekit.agents.voice.events:MetricsCollectedEvent",)


def server_is_connecting(server: AgentServer) -> bool:
    """Whether ``server`` is (re)connecting to LiveKit, when it cannot take jobs.

    The ``worker_registered`` event says when a connection is up; nothing public says when
    it dropped, so the heartbeat reads the flag ``AgentServer._connection_task`` keeps.
    """
    return bool(server._connecting)


def on_model_metrics(session: AgentSession, callback: Callable[[Any], None]) -> None:
    """Call ``callback`` with each ``MetricsCollectedEvent`` of ``session``.

    livekit-agents 1.8.9 deprecates the ``metrics_collected`` event for ``ChatMessage.metrics``
    (``AgentSession.on`` logs a warning per subscription), but a realtime model's time to
    first audio is only there. Subscribed on the event emitter underneath, so each
    conversation does not log that warning.
    """
    from livekit import rtc

    rtc.EventEmitter.on(session, "metrics_collected", callback)
