"""Bursts and load against POST /voice-widget/api/sessions/ in real server processes.

Each run migrates a database of its own (a temporary SQLite file, or a temporary PostgreSQL
database when PostgreSQL answers at ``--postgres``), creates a persona, starts the example site
under daphne on free 127.0.0.1 ports (``tests.burst_settings``: the example site's database
options, its ``REDIS_URL`` cache, DEBUG off), fires the requests, stops the servers and counts
the conversation rows. Prints for every run the 201s, the refusals by code, the errors (5xx,
connection failures) and the rows created:

- database bursts: ``--burst`` simultaneous requests, throttles off, against one and two
  processes, on SQLite and PostgreSQL; then ``--load`` requests from 8 keep-alive clients;
- the throttle: ``--burst`` simultaneous anonymous requests from one address against two
  processes sharing Redis (``--redis``), at the example site's rate (10/minute), with
  voice_widget's atomic throttle and, as the reference in the same run, with DRF's own
  ``AnonRateThrottle`` (``benchmarks.drf_throttle_settings``).

Not a test: the tests (tests/test_burst.py) assert; this prints what a machine does.

    .venv/bin/python benchmarks/bench_burst.py [--burst 50] [--load 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.site_servers import (  # noqa: E402
    SiteServers,
    burst,
    count_conversations,
    load,
    prepare_database,
    site_environment,
    tally,
)

LIMIT = 10  # the example site's anonymous rate: 10/minute


@contextmanager
def database(kind: str, tmp: Path, postgres: str) -> Iterator[str]:
    """A database URL of this run's own, dropped afterwards."""
    if kind == "SQLite":
        yield f"sqlite:///{tmp / f'{secrets.token_hex(4)}.sqlite3'}"
        return
    import psycopg

    name = f"vw_burst_{secrets.token_hex(4)}"
    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres}/{name}"
    finally:
        with psycopg.connect(f"{postgres}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available(postgres: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(f"{postgres}/postgres", connect_timeout=3):
            return True
    except Exception:
        return False


def redis_client(url: str) -> object | None:
    try:
        import redis

        client = redis.Redis.from_url(url)
        client.ping()
        return client
    except Exception:
        return None


def describe(answers: list) -> tuple[int, str, str]:
    """The 201s; the refusals (4xx) and the errors (5xx, no answer), each by status and code."""
    counts = tally(answers)
    created = counts.pop("201", 0)

    def listed(labels: dict) -> str:
        return ", ".join(f"{n} × {label}" for label, n in sorted(labels.items())) or "none"

    refusals = {label: n for label, n in counts.items() if label.startswith("4")}
    errors = {label: n for label, n in counts.items() if label not in refusals}
    return created, listed(refusals), listed(errors)


def report(label: str, answers: list, rows: int, seconds: float) -> None:
    created, refused, errors = describe(answers)
    print(
        f"  {label:<38} {len(answers):>4} sent in {seconds:5.2f} s: {created:>4} × 201, "
        f"refused {refused}, errors {errors}, {rows} rows"
    )


def database_runs(kind: str, args: argparse.Namespace, tmp: Path) -> dict[int, float]:
    """The burst and the load against 1 and 2 processes; the load's requests/s by processes."""
    rates = {}
    for processes in (1, 2):
        with database(kind, tmp, args.postgres) as url:
            env = site_environment(database_url=url, throttle=False, max_unjoined=None)
            # A concurrency limit above the load: every request reads before it writes.
            prepare_database(env, max_concurrent=100_000)
            with SiteServers(env, count=processes, log_dir=tmp) as servers:
                started = time.perf_counter()
                burst_answers = burst(servers.ports, args.burst)
                burst_seconds = time.perf_counter() - started
                burst_rows = count_conversations(env)
                started = time.perf_counter()
                load_answers = load(servers.ports, args.load)
                load_seconds = time.perf_counter() - started
            rows = count_conversations(env)
        where = f"{kind}, {processes} daphne{'s' if processes > 1 else ''}"
        report(f"{where}, burst", burst_answers, burst_rows, burst_seconds)
        report(f"{where}, load (8 clients)", load_answers, rows - burst_rows, load_seconds)
        rates[processes] = len(load_answers) / load_seconds
    print(
        f"  ratio: the load ran at {rates[1]:,.0f} requests/s with 1 process and "
        f"{rates[2]:,.0f} with 2 ({rates[2] / rates[1]:.2f}x)"
    )
    return rates


def throttle_runs(args: argparse.Namespace, tmp: Path, redis_url: str, client: object) -> None:
    passed = {}
    for name, settings_module in (
        ("voice_widget's atomic throttle", "tests.burst_settings"),
        ("DRF's AnonRateThrottle (reference)", "benchmarks.drf_throttle_settings"),
    ):
        prefix = f"vw-bench-{secrets.token_hex(6)}"
        with database("SQLite", tmp, args.postgres) as url:
            env = site_environment(
                database_url=url,
                redis_url=redis_url,
                cache_key_prefix=prefix,
                max_unjoined=None,
                settings_module=settings_module,
            )
            prepare_database(env)
            try:
                with SiteServers(env, count=2, log_dir=tmp) as servers:
                    started = time.perf_counter()
                    answers = burst(servers.ports, args.burst)
                    seconds = time.perf_counter() - started
                rows = count_conversations(env)
            finally:
                keys = client.keys(f"{prefix}:*")
                if keys:
                    client.delete(*keys)
        report(name, answers, rows, seconds)
        passed[name] = describe(answers)[0]
    ours, drf = passed.values()
    print(
        f"  ratio: {ours} of {args.burst} passed a limit of {LIMIT} with voice_widget's throttle "
        f"({ours / LIMIT:.1f}x the limit), {drf} with DRF's ({drf / LIMIT:.1f}x the limit)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--load", type=int, default=200)
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432",
        help="a PostgreSQL server (no database name) where temporary databases may be created",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()

    print(
        f"machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"POST /voice-widget/api/sessions/ through daphne on 127.0.0.1: bursts of {args.burst} "
        f"simultaneous requests, load of {args.load} requests"
    )
    with tempfile.TemporaryDirectory(prefix="vw-burst-") as tmp_name:
        tmp = Path(tmp_name)
        kinds = ["SQLite"] + (["PostgreSQL"] if postgres_available(args.postgres) else [])
        if len(kinds) == 1:
            print(f"  (no PostgreSQL at {args.postgres}: SQLite only)")
        print("database (throttles off):")
        for kind in kinds:
            database_runs(kind, args, tmp)
        client = redis_client(args.redis)
        if client is None:
            print(f"throttle: skipped, no Redis at {args.redis}")
            return
        print(f"throttle (anon {LIMIT}/minute, one address, 2 daphnes sharing Redis):")
        throttle_runs(args, tmp, args.redis, client)


if __name__ == "__main__":
    main()
