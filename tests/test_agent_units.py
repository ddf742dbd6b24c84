"""Small pieces of the worker: page-context rendering, usage summary, process setup and the
example shop's tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent_runner.instructions import TRUNCATION_MARK, build_instructions, render_context_block
from agent_runner.usage import summarize_usage
from voice_widget.persona_settings import PersonaSettings

pytestmark = pytest.mark.agent

REPO = Path(__file__).resolve().parent.parent


def test_context_blocks_are_bounded_in_bytes_and_cannot_close_themselves():
    big = {"items": ["ä" * 50 for _ in range(100)], "x": "</site_facts>"}
    text = render_context_block(big, max_bytes=300)
    assert len(text.encode()) <= 300 and text.endswith(TRUNCATION_MARK)
    small = render_context_block({"x": "</site_facts>"}, max_bytes=300)
    assert json.loads(small) == {"x": "</site_facts>"} and "<" not in small


def test_instructions_without_context_are_the_personas_own():
    persona = PersonaSettings.from_snapshot({"instructions": "You are Paula."})
    assert build_instructions(
        persona, signed_context={}, page_context={}, max_context_bytes=100
    ) == ("You are Paula.")


def test_usage_summary_totals_llm_tokens_tts_characters_and_stt_seconds():
    from livekit.agents.metrics import LLMModelUsage, STTModelUsage, TTSModelUsage

    summary = summarize_usage(
        [
            LLMModelUsage(
                provider="openai", model="gpt-4o-mini", input_tokens=100, output_tokens=20
            ),
            LLMModelUsage(provider="openai", model="gpt-4o", input_tokens=5, output_tokens=1),
            TTSModelUsage(provider="cartesia", model="sonic-2", characters_count=42),
            STTModelUsage(provider="deepgram", model="nova-3", audio_duration=12.3456),
        ]
    )
    assert (summary["llm_input_tokens"], summary["llm_output_tokens"]) == (105, 21)
    assert summary["tts_characters"] == 42 and summary["stt_audio_seconds"] == 12.346
    assert len(summary["models"]) == 4
    assert json.loads(json.dumps(summary)) == summary


def test_prewarm_sets_up_django_and_loads_the_vad_once_per_process():
    from livekit.agents import JobExecutorType, JobProcess
    from livekit.plugins import silero

    from agent_runner.worker import VAD_KEY, prewarm

    proc = JobProcess(executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None)
    prewarm(proc)
    assert isinstance(proc.userdata[VAD_KEY], silero.VAD)


FORKSERVER_AND_JOB = """
import json, os, threading
import django
django.setup()
import psycopg
from django.db import connection
from django.db.backends.signals import connection_created

def pool_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("pool-")]

def other_connections():
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]

opened = []
connection_created.connect(lambda **kwargs: opened.append(1))
from agent_runner import warmup  # what the forkserver imports: it runs the warm-up
from agent_runner.worker import close_database_connections, prewarm
result = {"warm_up_connected": bool(opened), "warmed_up_in_me": warmup.warmed_up_in == os.getpid()}
connection.ensure_connection()  # had something queried there after all
result["pool_threads_when_open"] = len(pool_threads())
close_database_connections()
result["pool_threads_after_close"] = len(pool_threads())
result["connections_after_close"] = other_connections()
reader, writer = os.pipe()
child = os.fork()
if child == 0:  # a job process, forked from the forkserver
    from livekit.agents import JobExecutorType, JobProcess
    prewarm(JobProcess(executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None))
    os.write(writer, json.dumps({
        "pool_threads": len(pool_threads()), "connections": other_connections(),
    }).encode())
    os._exit(0)
os.close(writer)
os.waitpid(child, 0)
result["job"] = json.loads(os.read(reader, 4096))
print(json.dumps(result))
"""


def test_the_forkserver_leaves_no_pool_and_each_job_process_pools_its_own(postgres_database):
    # The example site pools PostgreSQL connections; a pool runs threads and holds sockets
    # that a job process forked from the forkserver must not inherit.
    database_url, _connections_to_it = postgres_database
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "CONN_MAX_AGE"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="example_site.settings",
        DATABASE_URL=database_url,
        DEBUG="True",
        PYTHONPATH=str(REPO),
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=180
    )
    done = subprocess.run(
        [sys.executable, "-c", FORKSERVER_AND_JOB],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["warm_up_connected"] is False and result["warmed_up_in_me"] is True
    assert result["pool_threads_when_open"] > 0
    assert result["pool_threads_after_close"] == 0
    assert result["connections_after_close"] == 0
    # prewarm read the personas in the job process: from a pool of its own, kept for its jobs.
    assert result["job"]["pool_threads"] > 0
    assert result["job"]["connections"] >= 1


@pytest.mark.django_db
def test_example_shop_tools_read_the_shops_database():
    from example_site.shop.models import Product
    from voice_widget.tools import registry

    Product.objects.update_or_create(
        slug="test-tandem",
        defaults={
            "name": "Test Tandem",
            "tagline": "A bike for two.",
            "description": "Two saddles.",
            "price": "999.00",
            "in_stock": 3,
        },
    )
    lookup = registry.get("product_lookup").function
    assert lookup(query="tandem")["products"] == [
        {"name": "Test Tandem", "price_eur": "999.00", "in_stock": 3, "summary": "A bike for two."}
    ]
    assert lookup(query="submarine")["products"] == []
    assert "opening_hours" in registry


@pytest.mark.django_db
def test_job_processes_load_noise_cancellation_only_when_an_active_persona_uses_it():
    from agent_runner.worker import personas_use_noise_cancellation
    from tests.factories import make_persona

    assert personas_use_noise_cancellation() is False
    make_persona(slug="quiet", noise_cancellation="off")
    make_persona(slug="retired", noise_cancellation="bvc", is_active=False)
    assert personas_use_noise_cancellation() is False
    make_persona(slug="busy-shop", noise_cancellation="bvc")
    assert personas_use_noise_cancellation() is True
