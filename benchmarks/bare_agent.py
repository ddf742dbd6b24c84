"""The reference of the worker benchmarks: a bare livekit-agents agent, as LiveKit's own
examples write one. No Django, no database, no recorder, no start handshake.

The same providers as the benchmarked persona: the openai plugin's STT, LLM and TTS (pointed
at whatever ``OPENAI_BASE_URL`` says, the OpenAI double in the benchmarks), Silero VAD loaded
in the process's setup function, and the persona's turn handling, all read from the JSON in
``BARE_AGENT_PERSONA`` (the benchmark fills it from the persona's snapshot). It registers as
``BARE_AGENT_NAME``, keeps ``BARE_AGENT_IDLE_PROCESSES`` job processes warm, and greets as
soon as its session runs in the room.

    BARE_AGENT_NAME=bare BARE_AGENT_PERSONA='{...}' LIVEKIT_URL=... \\
        python benchmarks/bare_agent.py start
"""

from __future__ import annotations

import json
import os

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess, cli
from livekit.plugins import openai, silero

PERSONA = json.loads(os.environ.get("BARE_AGENT_PERSONA") or "{}")


def prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = silero.VAD.load(
        activation_threshold=PERSONA.get("vad_threshold", 0.5),
    )


def turn_handling() -> dict:
    """The persona's turn-taking, as the worker hands it to ``AgentSession``."""
    timeout = PERSONA.get("false_interruption_timeout", 2.0)
    return {
        "turn_detection": PERSONA.get("turn_detection", "vad"),
        "endpointing": {
            "mode": "fixed",
            "min_delay": PERSONA.get("min_endpointing_delay", 0.5),
            "max_delay": PERSONA.get("max_endpointing_delay", 3.0),
        },
        "interruption": {
            "enabled": PERSONA.get("allow_interruptions", True),
            "mode": "vad",
            "min_duration": PERSONA.get("min_interruption_duration", 0.5),
            "min_words": PERSONA.get("min_interruption_words", 0),
            "false_interruption_timeout": timeout,
            "resume_false_interruption": timeout is not None,
        },
        "preemptive_generation": {"enabled": PERSONA.get("preemptive_generation", False)},
    }


server = AgentServer(
    setup_fnc=prewarm,
    num_idle_processes=int(os.environ.get("BARE_AGENT_IDLE_PROCESSES", "1")),
    load_threshold=float("inf"),  # as ours in the benchmarks: the machine is shared
    port=0,
)


@server.rtc_session(agent_name=os.environ.get("BARE_AGENT_NAME", "bare-agent"))
async def entrypoint(ctx: JobContext) -> None:
    language = (PERSONA.get("language") or "en").split("-")[0]
    session = AgentSession(
        stt=openai.STT(model=PERSONA.get("stt_model", "gpt-4o-mini-transcribe"), language=language),
        llm=openai.LLM(model=PERSONA.get("llm_model", "gpt-4o-mini")),
        tts=openai.TTS(
            model=PERSONA.get("tts_model", "gpt-4o-mini-tts"),
            voice=PERSONA.get("tts_voice", "alloy"),
        ),
        vad=ctx.proc.userdata["vad"],
        turn_handling=turn_handling(),
    )
    await session.start(
        agent=Agent(instructions=PERSONA.get("instructions", "You are a helpful assistant.")),
        room=ctx.room,
    )
    session.say(PERSONA.get("greeting") or "Hello!")


if __name__ == "__main__":
    cli.run_app(server)
