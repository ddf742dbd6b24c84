import secrets

import pytest


@pytest.fixture
def livekit_env_clear(monkeypatch):
    """No LiveKit variables in the environment, so only settings count."""
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, whose teardown also works on PostgreSQL when the async
    ORM's worker threads still hold connections (they are thread-local and never closed)."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture(autouse=True)
def fresh_origin_index():
    """A test's personas are rolled back without post_delete: forget the CORS origins index."""
    from voice_widget.api.origins import clear_origin_index

    clear_origin_index()
    yield


@pytest.fixture(autouse=True)
def fresh_session_caches():
    """A test's personas and heartbeats are rolled back without signals: forget the session
    endpoint's per-process snapshots and "a worker is alive"."""
    from voice_widget.api.session_reads import clear_session_caches

    clear_session_caches()
    yield
    clear_session_caches()


@pytest.fixture
def worker_alive(db):
    """A fresh heartbeat of a worker under the configured agent name: the session endpoint
    opens conversations only while some worker serves them."""
    from tests.factories import make_heartbeat
    from voice_widget.conf import vw_settings

    return make_heartbeat(agent_name=vw_settings.AGENT_NAME)


#: The server PostgreSQL tests make a database of its own on (and drops it after).
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_database():
    """A new, empty PostgreSQL database on the test server: (its URL, a way to count the
    connections to it). Dropped afterwards, with whatever connections are left."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL server at {POSTGRES_SERVER}")
    name = f"vw_test_{secrets.token_hex(6)}"
    admin.execute(f'CREATE DATABASE "{name}"')

    def connections_to_it() -> int:
        # On the connection already open: a new one may not get in while the site holds many.
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]
        ).fetchone()[0]

    try:
        yield POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}", connections_to_it
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
