"""The smallest LiveKit job for the worker-protocol test: it connects, says so in its
attributes (with the dispatch metadata), and ends when the visitor leaves."""

from __future__ import annotations

from livekit.agents import JobContext


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()

    def on_disconnected(participant: object) -> None:
        if not ctx.room.remote_participants:
            ctx.shutdown("the visitor left")

    ctx.room.on("participant_disconnected", on_disconnected)
    await ctx.room.local_participant.set_attributes(
        {"e2e.connected": "yes", "e2e.metadata": ctx.job.metadata}
    )
