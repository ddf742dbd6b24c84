"""Bursts of simultaneous session requests against the example site in real server processes
(daphne, as deployed): the throttle holds across two processes that share Redis (issue 12,
point 3), and the example site's SQLite settings hold a burst without "database is locked"
(point 8), and its PostgreSQL connection pool bounds the connections a burst opens. Each test
migrates a database of its own and stops its servers."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from tests.site_servers import (
    SiteServers,
    burst,
    count_conversations,
    prepare_database,
    site_environment,
    tally,
)

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: A database number of Redis's own for these tests; the keys also carry a prefix per run,
#: and only those are deleted afterwards.
REDIS_DB = 13
#: The example site's anonymous rate (voice_widget's default): 10/minute.
ANON_LIMIT = 10


@pytest.fixture
def shared_redis():
    redis = pytest.importorskip("redis")
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_HOST}:{REDIS_PORT} (start redis-server to run this)")
    prefix = f"vw-burst-{secrets.token_hex(6)}"
    yield client, f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}", prefix
    keys = client.keys(f"{prefix}:*")
    if keys:
        client.delete(*keys)
    client.close()


def test_a_burst_against_two_processes_sharing_redis_passes_at_most_the_limit(
    tmp_path, shared_redis
):
    client, redis_url, prefix = shared_redis
    env = site_environment(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        redis_url=redis_url,
        cache_key_prefix=prefix,
        # Every request comes from 127.0.0.1: without this, the per-visitor limit on
        # unjoined conversations (2) would refuse most of them before the throttle counts.
        max_unjoined=None,
    )
    prepare_database(env)
    with SiteServers(env, count=2, log_dir=tmp_path) as servers:
        answers = burst(servers.ports, 50)
        log = servers.log_text()
    # DRF's own throttle let 44-47 of 50 through one process (it reads, then writes back).
    assert tally(answers) == {"201": ANON_LIMIT, "429 throttled": 50 - ANON_LIMIT}, log
    assert count_conversations(env) == ANON_LIMIT
    # Both processes counted in the one shared Redis.
    assert client.keys(f"{prefix}:*throttle_voice_widget_anon_*")


def test_the_example_sites_sqlite_settings_hold_a_burst_of_50(tmp_path):
    # Before the busy timeout, IMMEDIATE transactions and WAL, 34-41 of 50 simultaneous
    # session requests answered 500 "database is locked". Four processes, so writers meet.
    env = site_environment(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", throttle=False, max_unjoined=None
    )
    # A concurrency limit above the burst: each request reads (the count) before it writes,
    # the pattern SQLite's default deferred transactions fail on.
    prepare_database(env, max_concurrent=1000)
    with SiteServers(env, count=4, log_dir=tmp_path) as servers:
        answers = burst(servers.ports, 50)
        log = servers.log_text()
    assert tally(answers) == {"201": 50}, log
    assert count_conversations(env) == 50
    assert "database is locked" not in log


#: The example site's connection pool, per process, in the PostgreSQL burst.
POOL_MAX_SIZE = 10


def test_the_example_sites_postgresql_pool_bounds_a_burst_of_100(tmp_path, postgres_database):
    # With CONN_MAX_AGE = 60, under daphne each request's thread kept a connection of its own
    # (it was never reused): a burst of 100 opened ~100 and met "too many clients already".
    database_url, connections_to_it = postgres_database
    env = site_environment(database_url=database_url, throttle=False, max_unjoined=None)
    env["DATABASE_POOL_MAX_SIZE"] = str(POOL_MAX_SIZE)
    prepare_database(env, max_concurrent=1000)
    seen: list[int] = []
    with SiteServers(env, count=1, log_dir=tmp_path) as servers:
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                seen.append(connections_to_it())
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            answers = burst(servers.ports, 100)
            time.sleep(0.5)  # what a finished request left behind
            seen.append(connections_to_it())
        finally:
            done.set()
            watcher.join()
        log = servers.log_text()
    assert max(seen) <= POOL_MAX_SIZE, (seen, log)
    assert tally(answers) == {"201": 100}, log
    assert count_conversations(env) == 100
