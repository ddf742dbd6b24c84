"""``run_voice_agent console --text`` as a person runs it: the real command in a subprocess,
typing on its stdin, its persona's language model an OpenAI-compatible double on 127.0.0.1.

The persona is a default one (Deepgram, OpenAI, Cartesia, LiveKit's turn-detector model),
and the subprocess has only ``OPENAI_API_KEY``: typing needs no speech keys and no
audio library.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doubles.openai_server import OpenAIServerDouble

pytestmark = pytest.mark.agent

REPO = Path(__file__).resolve().parent.parent
REPLY = "We are open from nine to six."


def _environment(db: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LIVEKIT_", "DJANGO_", "DATABASE_URL", "OPENAI_"))
        and k not in ("DEEPGRAM_API_KEY", "CARTESIA_API_KEY")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tests.e2e.settings",
        VOICE_WIDGET_E2E_DB=str(db),
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


@pytest.fixture
def console_db(tmp_path):
    """A migrated SQLite file with the persona ``ben`` (the factory's defaults)."""
    path = tmp_path / "db.sqlite3"
    env = _environment(path)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=120
    )
    script = (
        "import django; django.setup()\n"
        "from tests.factories import make_persona\n"
        "make_persona(slug='ben', name='Ben', llm_provider='openai', llm_model='gpt-4o-mini')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True, timeout=60)
    return path


def _rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


async def _console(db: Path, server: OpenAIServerDouble, typed: str, tmp_path: Path):
    env = _environment(
        db,
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="sk-test",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "run_voice_agent",
        "console",
        "--persona",
        "ben",
        "--text",
        "--log-file",
        str(tmp_path / "console.log"),
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(typed.encode()), 90)
    return process.returncode, stdout.decode(), stderr.decode()


async def test_typing_to_a_persona_shows_only_the_conversation_and_saves_it(console_db, tmp_path):
    async with OpenAIServerDouble(default_reply=REPLY) as server:
        code, out, err = await _console(console_db, server, "When are you open?\n", tmp_path)

    assert code == 0, out + err
    assert "Ben: Hello! How can I help?" in out
    assert f"Ben: {REPLY}" in out
    assert (
        out.strip().splitlines()[-1] == "Conversation ended: Visitor ended it (client_end, ended)"
    )
    for text in (out, err):
        assert "Traceback" not in text and "DEBUG" not in text and "Deprecated" not in text
    assert err == ""
    [request] = server.requests
    assert request["json"]["messages"][-1] == {"role": "user", "content": "When are you open?"}

    [(conversation_id, status, reason)] = _rows(
        console_db, "SELECT id, status, end_reason FROM voice_widget_conversation"
    )
    assert (status, reason) == ("ended", "client_end")
    turns = _rows(
        console_db,
        "SELECT role, text FROM voice_widget_turn ORDER BY sequence",
    )
    assert turns == [
        ("agent", "Hello! How can I help?"),
        ("user", "When are you open?"),
        ("agent", REPLY),
    ]


async def test_a_failing_model_ends_with_one_line_naming_the_reason(console_db, tmp_path):
    async with OpenAIServerDouble(replies=[{"error": "boom", "status": 400}]) as server:
        code, out, err = await _console(console_db, server, "Hello?\n", tmp_path)

    assert code == 1, out + err
    last = out.strip().splitlines()[-1]
    assert last.startswith(
        "Conversation ended: Error (error, failed): The language model (openai gpt-4o-mini) failed"
    )
    assert "boom" in last and "HTTP 400" in last
    for text in (out, err):
        assert "Traceback" not in text and "DEBUG" not in text
    assert err == ""
    [(status, reason, detail)] = _rows(
        console_db, "SELECT status, end_reason, end_detail FROM voice_widget_conversation"
    )
    assert (status, reason) == ("failed", "error")
    assert "The language model (openai gpt-4o-mini) failed once" in detail
    assert "boom (HTTP 400)" in detail
    # What an operator needs beyond that line is in the log file.
    assert "boom" in (tmp_path / "console.log").read_text()
