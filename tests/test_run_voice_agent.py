"""``manage.py run_voice_agent``: arguments, what it hands LiveKit, and how it starts and stops."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from agent_runner.management.commands.run_voice_agent import INSTALL_HINT, Command

pytestmark = pytest.mark.agent

REPO = Path(__file__).resolve().parent.parent
CLEAR_CONNECTION_ERROR = "Cannot connect to the LiveKit server at"


@pytest.fixture
def captured_runs(monkeypatch):
    # dev mode sets LIVEKIT_DEV_MODE for its job processes; undo that after the test.
    monkeypatch.setenv("LIVEKIT_DEV_MODE", "")
    runs = []

    def run_worker(self, mode, agent_name, options):
        runs.append({**options, "mode": mode, "agent_name": agent_name})

    monkeypatch.setattr(Command, "run_worker", run_worker)
    return runs


def test_start_parses_the_deployment_options(captured_runs):
    call_command(
        "run_voice_agent",
        "start",
        "--agent-name",
        "shop-agent",
        "--log-level",
        "debug",
        "--load-threshold",
        "0.5",
        "--num-idle-processes",
        "2",
        "--port",
        "9000",
        "--drain-timeout",
        "60",
    )
    (run,) = captured_runs
    assert run["mode"] == "start" and run["agent_name"] == "shop-agent"
    assert run["log_level"] == "DEBUG" and run["log_format"] == "json"
    assert (run["load_threshold"], run["num_idle_processes"], run["port"]) == (0.5, 2, 9000)
    assert run["drain_timeout"] == 60


def test_agent_name_defaults_to_the_voice_widget_setting(captured_runs, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "AGENT_NAME": "from-settings"}
    call_command("run_voice_agent", "dev")
    assert captured_runs[0]["agent_name"] == "from-settings"
    assert os.environ["LIVEKIT_DEV_MODE"] == "1"
    assert captured_runs[0]["log_format"] == "colored"


@pytest.mark.django_db
def test_the_worker_shows_the_provider_key_warnings_at_its_start(
    captured_runs, monkeypatch, capsys
):
    # Deployment checks elsewhere (quiet in runserver); the worker is where they matter.
    from tests.factories import make_persona

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    make_persona(slug="ben")
    call_command("run_voice_agent", "start")
    assert captured_runs
    err = capsys.readouterr().err
    assert "agent_runner.W001" in err and "OPENAI_API_KEY" in err


def test_a_mode_is_required_and_log_levels_are_checked():
    with pytest.raises(CommandError):
        call_command("run_voice_agent")
    with pytest.raises(CommandError):
        call_command("run_voice_agent", "start", "--log-level", "loud")


def test_server_gets_livekit_settings_from_voice_widget_and_the_agent_name(settings):
    from agent_runner.worker import build_server, entrypoint, prewarm

    settings.VOICE_WIDGET = {
        "LIVEKIT_URL": "wss://lk.example.test",
        "LIVEKIT_API_KEY": "APIkey123",
        "LIVEKIT_API_SECRET": "a-secret-that-is-long-enough-0123456789",
    }
    server = build_server(agent_name="shop-agent", load_threshold=0.5, port=9000)

    assert server.livekit_url == "wss://lk.example.test"
    assert (server._api_key, server._api_secret) == (
        "APIkey123",
        "a-secret-that-is-long-enough-0123456789",
    )
    assert server.agent_name == "shop-agent"
    assert server._load_threshold == 0.5 and server._port == 9000
    assert server._entrypoint_fnc is entrypoint and server.setup_fnc is prewarm


def test_cli_arguments_follow_the_mode():
    command = Command()
    dev = command.cli_args("dev", {"log_level": None, "log_format": "colored"})
    assert dev.dev is True and dev.log_level == "DEBUG" and dev.log_format == "colored"
    start = command.cli_args("start", {"log_level": "WARN", "log_format": "json"})
    assert start.dev is False and start.log_level == "WARN"
    assert start.url is None  # the server already has VOICE_WIDGET's URL; nothing overrides it


@pytest.mark.django_db
def test_console_needs_an_existing_persona():
    with pytest.raises(CommandError, match="No persona with the slug 'nobody'"):
        call_command("run_voice_agent", "console", "--persona", "nobody", "--text")


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "DJANGO_"))}
    env.update(extra)
    return env


def test_without_the_agent_extra_the_command_prints_one_line_on_how_to_install():
    script = (
        "import sys; sys.modules['livekit.agents'] = None\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(['manage.py', 'run_voice_agent', 'start'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=_environment(DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"CommandError: {INSTALL_HINT}"
    assert "Traceback" not in result.stderr
    assert 'pip install -e "/path/to/django-voice-widget[agent]"' in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_worker_until(
    tmp_path: Path, options: list[str], expected: list[str], stop_signal: int, **env: str
) -> tuple[int, list[str], int]:
    """Run ``run_voice_agent start`` against a closed LiveKit port until every ``expected``
    text has been printed, then send ``stop_signal``; returns (exit status, lines, port)."""
    port = _closed_port()
    (tmp_path / "unreachable_settings.py").write_text(
        "from tests.settings import *  # noqa\n"
        f"VOICE_WIDGET = {{**VOICE_WIDGET, 'LIVEKIT_URL': 'ws://127.0.0.1:{port}'}}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_voice_agent", "start", "--port", "0", *options],
        cwd=REPO,
        env=_environment(
            DJANGO_SETTINGS_MODULE="unreachable_settings",
            PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]),
            **env,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60  # a busy 2-core machine starts slowly
        while not all(any(text in line for line in lines) for text in expected):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        process.send_signal(stop_signal)
        returncode = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=5)
    return returncode, lines, port


@pytest.mark.parametrize(
    ("stop_signal", "idle_processes"), [(signal.SIGTERM, 1), (signal.SIGINT, 0)]
)
def test_start_against_an_unreachable_livekit_logs_one_clear_error_and_stops_cleanly(
    tmp_path, stop_signal, idle_processes
):
    """With one idle process, its setup (Django, the VAD) runs in a real job process too."""
    expected = [CLEAR_CONNECTION_ERROR] + (["process initialized"] if idle_processes else [])
    options = ["--num-idle-processes", str(idle_processes), "--log-format", "colored"]
    returncode, lines, port = _run_worker_until(tmp_path, options, expected, stop_signal)
    output = "".join(lines)

    assert returncode == 0, output
    assert "Traceback" not in output
    clear = [line for line in lines if CLEAR_CONNECTION_ERROR in line]
    assert len(clear) == 1 and f"ws://127.0.0.1:{port}" in clear[0]
    assert "shutting down worker" in output
    assert "initialization failed" not in output and "could not be loaded" not in output


def test_start_logs_every_line_as_json_including_what_job_processes_log(tmp_path):
    options = ["--num-idle-processes", "1", "--log-format", "json", "--log-level", "DEBUG"]
    expected = ["Django is set up", CLEAR_CONNECTION_ERROR]
    returncode, lines, _ = _run_worker_until(
        tmp_path, options, expected, signal.SIGTERM, VOICE_WIDGET_LOG_LEVEL="DEBUG"
    )

    assert returncode == 0, "".join(lines)
    records = []
    for line in lines:
        if line.strip():
            record = json.loads(line)  # every line, ours and LiveKit's, is one JSON object
            assert isinstance(record, dict), line
            records.append(record)
    job_line = next(r for r in records if "Django is set up" in r["message"])
    assert job_line["name"] == "agent_runner" and job_line["level"] == "DEBUG"
    # Django, the plugins and the VAD were loaded once, in the forkserver the job process was
    # forked from, not in the job process itself.
    job_pid, warmed_up_in = re.search(
        r"job process (\d+): .* from process (\d+)", job_line["message"]
    ).groups()
    assert warmed_up_in != job_pid
    assert any(r["message"].startswith("Starting the voice agent worker (start)") for r in records)


def test_audio_console_goes_through_livekit_public_cli_to_its_console(monkeypatch, settings):
    """``run_audio_console`` hands LiveKit's public ``cli.run_app`` a ``console`` command that
    its own parser accepts; the console it reaches gets our server and log level."""
    from livekit.agents.cli import _legacy

    from agent_runner.serve import run_audio_console
    from agent_runner.worker import build_server

    monkeypatch.setenv("LIVEKIT_DEV_MODE", "")
    reached = []
    # The terminal's audio (PortAudio) is not here: stop where LiveKit's console would open it.
    monkeypatch.setattr(_legacy, "_run_console", lambda **kwargs: reached.append(kwargs))
    server = build_server(agent_name="shop-agent", heartbeat=False)
    argv = list(sys.argv)

    run_audio_console(server, log_level="INFO")

    (console,) = reached
    assert console["server"] is server and console["mode"] == "audio"
    assert console["log_level"] == "INFO" and console["record"] is False
    assert sys.argv == argv


def test_download_files_runs_livekits_download_for_the_installed_plugins(capsys, caplog):
    caplog.set_level("INFO", logger="livekit.agents")
    call_command("run_voice_agent", "download-files")
    assert "Model files downloaded." in capsys.readouterr().out
    # LiveKit's own download step found our plugins (silero, openai…) and ran theirs.
    assert any("livekit.plugins.silero" in r.getMessage() for r in caplog.records)
