"""A language model that is down, as the visitor meets it: the real ``ConversationRunner`` on a
real ``AgentSession`` whose real livekit openai plugins talk to the OpenAI-compatible double,
made to answer every chat request with 503.

One run: the agent greets (speech synthesis works), then the model goes down; the visitor
asks, and asks again one second after each failed turn (the agent's notice, or nothing)
until the conversation ends. Measured from the first question:

- first word: when the visitor was first told anything (the agent started its notice);
- ended: when the conversation's ending was recorded;
- turns: the visitor's questions that got no answer; requests: chat requests refused.

Two budgets, in the same process, through the same double: ours (``VOICE_WIDGET``'s
``PROVIDER_*`` defaults), and livekit-agents' own defaults as the reference (3 retries 2 s
apart, the session closed after more than 3 failed turns in a row), which is what the
worker used before the ``PROVIDER_*`` settings (the reference keeps the runner's notices, so
its "first word" comes after one turn's four tries; before the notices there was none at
all until the end). Prints per-run values, medians and
``ours / reference``. Not a test: numbers depend on the machine.

    .venv/bin/python benchmarks/bench_provider_outage.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: livekit-agents 1.8.9's defaults (``APIConnectOptions``, ``max_unrecoverable_errors=3``).
REFERENCE_BUDGET = {
    "PROVIDER_MAX_RETRY": 3,
    "PROVIDER_RETRY_INTERVAL": 2.0,
    "PROVIDER_TIMEOUT": 10.0,
    "PROVIDER_FAILURES_TO_END": 4,
}
QUESTION = "What are your opening hours?"


def setup_django(database: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    logging.disable(logging.CRITICAL)  # the runner's log lines would drown the figures


async def one_run(budget: dict[str, Any] | None) -> dict[str, float]:
    from asgiref.sync import sync_to_async
    from django.test import override_settings
    from livekit.agents import AgentSession
    from livekit.plugins import silero

    from agent_runner.conversation import ConversationRunner
    from agent_runner.pipeline import build_session_plan
    from tests.doubles.audio import InstantAudioOutput
    from tests.doubles.openai_server import OPENAI_PERSONA_FIELDS, OpenAIServerDouble
    from tests.factories import make_conversation, make_persona
    from voice_widget.conf import SETTING_NAME

    with override_settings(**{SETTING_NAME: dict(budget or {})}):
        async with OpenAIServerDouble() as server:
            os.environ["OPENAI_BASE_URL"] = server.base_url

            @sync_to_async
            def new_conversation() -> Any:
                persona = make_persona(greeting="Hello from Ben.", **OPENAI_PERSONA_FIELDS)
                return make_conversation(persona, persona_snapshot=persona.snapshot())

            conversation = await new_conversation()
            plan = build_session_plan(conversation.persona_snapshot, vad=silero.VAD.load())
            session = AgentSession(**plan.session_kwargs)
            session.output.audio = InstantAudioOutput()
            runner = ConversationRunner(
                conversation=conversation, session=session, start_immediately=True
            )
            await runner.start()
            await asyncio.wait_for(session.wait_for_idle(), 10)
            first_word: list[float] = []
            session.on(
                "agent_state_changed",
                lambda ev: (
                    ev.new_state == "speaking"
                    and not first_word
                    and first_word.append(time.monotonic())
                ),
            )
            server.fail("llm", status=503)
            started = time.monotonic()
            turns = 0
            while runner.end_reason is None and turns < 20:
                turns += 1
                handle = session.generate_reply(user_input=QUESTION)
                await asyncio.wait_for(handle.wait_for_playout(), 60)  # the failed turn
                await asyncio.sleep(0.05)  # the runner's notice (or ending) is queued
                await asyncio.wait_for(session.wait_for_idle(), 30)
                if runner.end_reason is None:
                    await asyncio.sleep(1.0)  # the visitor asks again
            await asyncio.wait_for(runner.wait_finished(), 60)
            ended = time.monotonic()
    return {
        "first_word": (first_word[0] - started) if first_word else float("nan"),
        "ended": ended - started,
        "turns": turns,
        "requests": len(server.refused),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        results: dict[str, list[dict[str, float]]] = {"ours": [], "reference": []}
        for run in range(args.runs):
            for name, budget in (("ours", None), ("reference", REFERENCE_BUDGET)):
                result = asyncio.run(one_run(budget))
                results[name].append(result)
                print(
                    f"run {run + 1} {name:9}: first word {result['first_word']:.2f} s, "
                    f"ended {result['ended']:.2f} s, {result['turns']} turns unanswered, "
                    f"{result['requests']} requests"
                )
    print()
    medians = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in results.items()
    }
    for name, values in medians.items():
        print(
            f"median {name:9}: first word {values['first_word']:.2f} s, ended "
            f"{values['ended']:.2f} s, {values['turns']:.0f} turns, "
            f"{values['requests']:.0f} requests"
        )
    ratio = medians["ours"]["ended"] / medians["reference"]["ended"]
    print(f"ended, ours / reference: {ratio:.2f}")


if __name__ == "__main__":
    main()
