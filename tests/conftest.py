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
