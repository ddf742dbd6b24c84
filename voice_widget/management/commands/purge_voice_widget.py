"""``manage.py purge_voice_widget``: delete transcripts and page context past the retention period.

Meant for cron (e.g. daily): it does nothing when ``VOICE_WIDGET["RETENTION_DAYS"]`` is None
(and ``--days`` is not given), exits 0 when there was nothing to delete, and prints one line
saying what it deleted (or, with ``--dry-run``, would delete).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...conf import vw_settings
from ...retention import purge_before, retention_cutoff


class Command(BaseCommand):
    help = (
        "Delete the transcripts and page context of conversations older than "
        "VOICE_WIDGET['RETENTION_DAYS'] (or --days); the conversations stay for statistics."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--days",
            type=int,
            help="Keep this many days instead of the RETENTION_DAYS setting.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be deleted, and delete nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None and days <= 0:
            raise CommandError("--days must be a positive number of days.")
        if days is None:
            days = vw_settings.RETENTION_DAYS
            if days is None:
                self.stdout.write(
                    "RETENTION_DAYS is None: transcripts are kept forever; nothing deleted."
                )
                return
            if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
                raise CommandError(
                    f"VOICE_WIDGET['RETENTION_DAYS'] = {days!r} is not a positive number "
                    "of days (manage.py check: voice_widget.E022)."
                )
        cutoff = retention_cutoff(days)
        if cutoff is None:  # pragma: no cover - days is set by now
            return
        result = purge_before(cutoff, dry_run=options["dry_run"])
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} the transcripts and page context of {result.conversations} "
            f"conversation(s) created before {cutoff:%Y-%m-%d %H:%M %Z} "
            f"({result.turns} transcript line(s))."
        )
