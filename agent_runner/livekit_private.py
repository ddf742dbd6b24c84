"""The livekit-agents internals the worker still relies on, all in this one module.

Everything else goes through livekit-agents' public surface. What is here has no public
equivalent in livekit-agents 1.8.9; ``tests/test_livekit_private.py`` checks every name in
``PRIVATE_NAMES`` against the installed version, so an upgrade that renames or reshapes one
fails in CI, not in a running worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livekit.agents import AgentServer

#: Every private livekit-agents name used by agent_runner, as "module:qualified.name".
PRIVATE_NAMES = ("livekit.agents.worker:AgentServer._connecting",)


def server_is_connecting(server: AgentServer) -> bool:
    """Whether ``server`` is (re)connecting to LiveKit, when it cannot take jobs.

    The ``worker_registered`` event says when a connection is up; nothing public says when
    it dropped, so the heartbeat reads the flag ``AgentServer._connection_task`` keeps.
    """
    return bool(server._connecting)
