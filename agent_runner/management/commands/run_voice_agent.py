"""``python manage.py run_voice_agent``: the LiveKit worker, with Django set up.

Modes, as in the LiveKit Agents CLI:

- ``dev``: development (debug logs, no load limit, a random port for the health server);
- ``start``: production (JSON logs, load limit, drains running conversations on SIGTERM);
- ``console --persona SLUG [--text]``: talk to a persona from the terminal, no LiveKit
  server needed (``--text`` types instead of speaking: only the language model runs, no
  audio library or speech provider is needed, and logs go to a file);
- ``download-files``: LiveKit's download of plugin model files, for plugins a project adds;
  ours need none (the turn detector and the VAD ship with their packages).

The LiveKit URL, key and secret are the ``VOICE_WIDGET`` settings the web side uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agent_runner.checks import WORKER_CHECKS_TAG
from voice_widget.persona_settings import PersonaSettings

INSTALL_HINT = (
    'The worker needs the "agent" extra (livekit-agents and its plugins). '
    "Install it the way django-voice-widget was installed, with [agent] added, e.g. "
    'pip install -e "/path/to/django-voice-widget[agent]" from a clone, or '
    'pip install --find-links dist "django-voice-widget[agent]" from a built wheel.'
)
LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"]
MODES = ["dev", "start", "console", "download-files"]


def require_agent_extra() -> None:
    """Raise a one-line ``CommandError`` when livekit-agents is not installed."""
    try:
        import livekit.agents  # noqa: F401
    except ImportError as exc:
        raise CommandError(INSTALL_HINT) from exc


def console_problem(persona: PersonaSettings, *, text: bool = False) -> str | None:
    """Why the console could not talk to this persona here (checked before it starts).
    Typing (``text``) needs only the language model's key."""
    from agent_runner.pipeline import missing_credentials

    missing = missing_credentials(persona, include_avatar=False, text_only=text)
    if missing:
        return f"Set {', '.join(missing)} in this terminal's environment first."
    return None


def _serious_check_issues() -> bool:
    from django.core import checks

    return any(issue.is_serious() and not issue.is_silenced() for issue in checks.run_checks())


class Command(BaseCommand):
    help = (
        "Run the LiveKit voice agent worker (modes: dev, start, console, download-files). "
        "It joins every room a token dispatches it to and reads personas from the database."
    )
    # Checks run in handle(), after the "agent extra installed?" check has had its say.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        modes = parser.add_subparsers(dest="mode", metavar="{" + ",".join(MODES) + "}")
        modes.required = True
        for mode, text in (
            ("dev", "Development: debug logs, no load limit, health server on a random port."),
            ("start", "Production: JSON logs, load limit, drains conversations on SIGTERM."),
        ):
            sub = modes.add_parser(mode, help=text, description=text)
            self._add_common(sub, default_log_format="colored" if mode == "dev" else "json")
            self._add_worker_options(sub)
        console = modes.add_parser(
            "console",
            help="Talk to a persona from this terminal (no LiveKit server needed).",
            description="Talk to a persona from this terminal (no LiveKit server needed).",
        )
        self._add_common(console, default_log_format="colored")
        console.add_argument("--persona", required=True, metavar="SLUG", help="Persona slug.")
        console.add_argument(
            "--text",
            action="store_true",
            help="Type instead of speaking: only the language model runs (no audio library, "
            "no speech keys); logs go to --log-file, at WARNING unless --log-level says else.",
        )
        console.add_argument(
            "--log-file",
            metavar="PATH",
            help="With --text: where the logs go (default: voice-widget-console-<conversation "
            "id>.log in the temporary directory, created only if something is logged).",
        )
        modes.add_parser(
            "download-files",
            help="Download the models the plugins need (turn detector, VAD…).",
            description="Download the models the plugins need (turn detector, VAD…).",
        )

    def _add_common(self, parser: argparse.ArgumentParser, *, default_log_format: str) -> None:
        parser.add_argument(
            "--agent-name",
            help="Agent name to register (default: VOICE_WIDGET['AGENT_NAME']). Tokens "
            "dispatch this name, so web and worker must agree.",
        )
        parser.add_argument(
            "--log-level",
            type=str.upper,
            choices=LOG_LEVELS,
            help="Log level (default: DEBUG in dev and console, WARNING in console --text, "
            "INFO in start).",
        )
        parser.add_argument(
            "--log-format",
            choices=["json", "colored"],
            default=default_log_format,
            help=f"Log format (default: {default_log_format}).",
        )

    def _add_worker_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--load-threshold",
            type=float,
            help="Stop taking new conversations above this CPU load, 0–1 (default 0.7 in start).",
        )
        parser.add_argument(
            "--num-idle-processes",
            type=int,
            help="Job processes kept warm for the next conversations (default: CPU count).",
        )
        parser.add_argument(
            "--port",
            type=int,
            help="Port of the worker's health HTTP server (default 8081 in start, random in dev).",
        )
        parser.add_argument("--host", help="Interface of the health HTTP server (default: all).")
        parser.add_argument(
            "--drain-timeout",
            type=int,
            help="Seconds to let running conversations finish on SIGTERM (default 3600).",
        )
        parser.add_argument(
            "--job-memory-limit-mb",
            type=float,
            help="Kill a conversation's process above this memory (default: no limit).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_agent_extra()
        mode = options["mode"]
        if mode == "download-files":
            return self.download_files()
        text_console = mode == "console" and options.get("text")
        if not text_console or _serious_check_issues():
            # Typing shows only the conversation: the worker's warnings (a persona lacking
            # speech keys, say) are about talking, which --text does not do.
            self.check(display_num_errors=False)
        if not text_console:
            # The provider-key warnings are deployment checks (quiet in runserver); here is
            # where they matter.
            self.check(
                tags=[WORKER_CHECKS_TAG],
                include_deployment_checks=True,
                databases=list(settings.DATABASES),
                display_num_errors=False,
            )

        from voice_widget.conf import vw_settings

        if not vw_settings.livekit_configured and not text_console:
            raise CommandError(
                "LiveKit is not configured: set VOICE_WIDGET['LIVEKIT_URL'], "
                "['LIVEKIT_API_KEY'] and ['LIVEKIT_API_SECRET'] (or the LIVEKIT_* variables)."
            )
        agent_name = options.get("agent_name") or vw_settings.AGENT_NAME
        if mode in ("dev", "console"):
            # As LiveKit's own CLI does for these modes; job processes inherit it.
            os.environ["LIVEKIT_DEV_MODE"] = "1"
        if mode == "console":
            return self.console(agent_name, options)
        return self.run_worker(mode, agent_name, options)

    # -- modes -------------------------------------------------------------------------

    def build_server(self, mode: str, agent_name: str, options: dict[str, Any]) -> Any:
        from agent_runner.worker import build_server

        return build_server(
            agent_name=agent_name,
            load_threshold=options.get("load_threshold"),
            num_idle_processes=options.get("num_idle_processes"),
            port=options.get("port"),
            host=options.get("host"),
            drain_timeout=options.get("drain_timeout"),
            job_memory_limit_mb=options.get("job_memory_limit_mb"),
        )

    def cli_args(self, mode: str, options: dict[str, Any]) -> Any:
        from livekit.agents.cli import proto

        default_level = "DEBUG" if mode == "dev" else "INFO"
        return proto.CliArgs(
            log_level=options.get("log_level") or default_level,
            log_format=options.get("log_format") or "json",
            dev=mode == "dev",
        )

    def run_worker(self, mode: str, agent_name: str, options: dict[str, Any]) -> None:
        from agent_runner.logs import route_app_logs_through_root
        from agent_runner.serve import serve

        server = self.build_server(mode, agent_name, options)
        # Our lines go through LiveKit's handler, in the chosen format (every line JSON in
        # start); the server logs the "Starting" line itself, once logging is set up.
        route_app_logs_through_root()
        serve(server, self.cli_args(mode, options))
        if server.connection_failed:
            # Already logged, in the chosen format ("Giving up: …"): just the exit status.
            raise SystemExit(1)

    def console(self, agent_name: str, options: dict[str, Any]) -> None:
        from agent_runner.logs import route_app_logs_through_root
        from agent_runner.serve import run_audio_console
        from agent_runner.worker import build_server, configure_jobs
        from voice_widget.models import Conversation, Persona

        try:
            persona = Persona.objects.get(slug=options["persona"])
        except Persona.DoesNotExist:
            raise CommandError(f"No persona with the slug {options['persona']!r}.") from None
        if not persona.is_active:
            self.stderr.write(f"Note: persona {persona.slug!r} is inactive; talking to it anyway.")
        snapshot = persona.snapshot()
        problem = console_problem(
            PersonaSettings.from_snapshot(snapshot), text=bool(options.get("text"))
        )
        if problem:
            raise CommandError(problem)
        if options.get("text"):
            return self.text_console(persona, options)
        try:
            import sounddevice  # noqa: F401  (LiveKit's console opens the terminal's audio)
        except (ImportError, OSError):
            raise CommandError(
                "Console mode needs the PortAudio library, also with --text "
                "(e.g. apt install libportaudio2, or brew install portaudio)."
            ) from None
        conversation = Conversation.objects.create(
            persona=persona,
            persona_snapshot=snapshot,
            room_name=f"console-{uuid.uuid4().hex[:12]}",
            identity="console",
            page_url="",
        )
        self.stdout.write(
            f"Console conversation {conversation.pk} with {persona.name}; its transcript is "
            "saved like any other. Ctrl+C ends it."
        )
        configure_jobs(conversation_id=str(conversation.pk), start_immediately=True)
        # The console runs the job in a thread: the plugins register here, on the main thread.
        import agent_runner.pipeline  # noqa: F401

        server = build_server(agent_name=agent_name, heartbeat=False)
        route_app_logs_through_root()
        run_audio_console(server, log_level=options.get("log_level") or "DEBUG")

    def text_console(self, persona: Any, options: dict[str, Any]) -> None:
        from agent_runner.console import ending_line, run_text_console
        from agent_runner.logs import log_to_file
        from agent_runner.pipeline import build_text_session_plan
        from voice_widget.models import Conversation, ConversationStatus

        snapshot = persona.snapshot()
        plan = build_text_session_plan(PersonaSettings.from_snapshot(snapshot))
        conversation = Conversation.objects.create(
            persona=persona,
            persona_snapshot=snapshot,
            room_name=f"console-{uuid.uuid4().hex[:12]}",
            identity="console",
            page_url="",
        )
        log_file = options.get("log_file") or os.path.join(
            tempfile.gettempdir(), f"voice-widget-console-{conversation.pk}.log"
        )
        log_to_file(log_file, options.get("log_level") or "WARNING")
        self.stdout.write(
            f"Typing to {persona.name} (conversation {conversation.pk}, saved like any "
            f"other; logs: {log_file}). Ctrl+D or Ctrl+C ends it."
        )
        conversation = asyncio.run(run_text_console(conversation, plan))
        self.stdout.write(ending_line(conversation))
        if conversation.status == ConversationStatus.FAILED:
            raise SystemExit(1)

    def download_files(self) -> None:
        from agent_runner.serve import download_plugin_files

        # The pipeline module imports the plugins personas use, so their files get fetched.
        with contextlib.suppress(ImportError):
            import agent_runner.pipeline  # noqa: F401
        if download_plugin_files() != 0:
            raise CommandError("Some model files could not be downloaded (see the log above).")
        self.stdout.write("Model files downloaded.")
