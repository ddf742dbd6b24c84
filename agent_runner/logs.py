"""One log stream for the worker, in the format the operator chose.

LiveKit's CLI puts one handler on the root logger of the worker process (JSON in ``start``,
colour in ``dev``), and every job process sends its records to that process through the
root logger. Two things of Django's would split the stream:

- the host's ``LOGGING`` gives ``agent_runner``/``voice_widget`` console handlers of their
  own, which print plain text into the JSON log;
- ``django.setup()`` in a job process applies ``LOGGING`` with ``dictConfig``, which closes
  every existing handler, LiveKit's forwarding one included, so nothing the job logs arrives.
"""

from __future__ import annotations

import logging
import sys

#: Our loggers; the worker's copies of them log through LiveKit's root handler.
APP_LOGGERS = ("agent_runner", "voice_widget")


def route_app_logs_through_root() -> None:
    """In the worker process: our loggers print through the root handler the CLI sets up.

    Handlers that write to the terminal are dropped (the root handler prints instead, in the
    chosen format); others the host configured (files, mail, Sentry) stay.
    """
    for name in APP_LOGGERS:
        app_logger = logging.getLogger(name)
        for handler in list(app_logger.handlers):
            if _writes_to_terminal(handler):
                app_logger.removeHandler(handler)
        app_logger.propagate = True


def _writes_to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return type(handler) is logging.StreamHandler and stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


def setup_django_keeping_log_handlers() -> None:
    """``django.setup()`` for a job process, without applying ``LOGGING`` (which would close
    the handler that forwards this process's records to the worker's output)."""
    import django
    from django.conf import settings

    settings.LOGGING_CONFIG = None
    django.setup()


def log_to_file(path: str, level: str) -> None:
    """The text console's logging: every record (ours, LiveKit's, Python warnings) at
    ``level`` or above goes to the file ``path`` (created on the first record), none to the
    terminal, which shows only the conversation."""
    numeric = logging.getLevelName("WARNING" if level == "WARN" else level)
    if not isinstance(numeric, int):  # TRACE: LiveKit's level below DEBUG
        numeric = 5
    handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(numeric)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if _writes_to_terminal(existing):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(numeric)
    route_app_logs_through_root()
    logging.captureWarnings(True)
