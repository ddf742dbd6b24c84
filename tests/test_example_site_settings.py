"""example_site/settings.py: configured from the environment, and a .env file when there is one."""

import logging
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

SETTINGS = Path(__file__).resolve().parent.parent / "example_site" / "settings.py"


def load_settings_beside(tmp_path: Path) -> dict:
    """Run a copy of the settings module as if the project lived in ``tmp_path``."""
    copy = tmp_path / "example_site" / "settings.py"
    copy.parent.mkdir()
    shutil.copy(SETTINGS, copy)
    return runpy.run_path(str(copy))


def unset(monkeypatch, *names: str) -> None:
    """Unset ``names`` now and after the test too (reading a .env file sets os.environ)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_no_env_file_means_no_log_line(tmp_path, caplog, monkeypatch):
    # Every process (the worker's job processes too) used to log ".env not found".
    unset(monkeypatch, "SECRET_KEY")
    with caplog.at_level(logging.DEBUG):
        values = load_settings_beside(tmp_path)
    assert not [r for r in caplog.records if ".env" in r.getMessage()]
    assert values["SECRET_KEY"].startswith("insecure-example-site-key")


def test_an_env_file_beside_manage_py_is_read(tmp_path, monkeypatch):
    unset(monkeypatch, "SECRET_KEY", "TIME_ZONE")
    (tmp_path / ".env").write_text("SECRET_KEY=from-the-env-file\nTIME_ZONE=Europe/Berlin\n")
    values = load_settings_beside(tmp_path)
    assert values["SECRET_KEY"] == "from-the-env-file"
    assert values["TIME_ZONE"] == "Europe/Berlin"


def import_settings_in_subprocess(**env: str) -> subprocess.CompletedProcess:
    """Import example_site.settings in a fresh interpreter with only ``env`` set."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import example_site.settings"],
        cwd=SETTINGS.parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_debug_a_missing_secret_key_refuses_to_start():
    # The published fallback key would let anyone forge signed page context.
    result = import_settings_in_subprocess(DEBUG="False")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_without_debug_a_secret_key_from_the_environment_starts():
    result = import_settings_in_subprocess(DEBUG="False", SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr


def test_debug_without_a_secret_key_uses_the_development_key():
    result = import_settings_in_subprocess(DEBUG="True")
    assert result.returncode == 0, result.stderr


def test_sqlite_waits_for_the_lock_instead_of_failing_a_burst(tmp_path, monkeypatch):
    unset(monkeypatch, "DATABASE_URL")
    options = load_settings_beside(tmp_path)["DATABASES"]["default"]["OPTIONS"]
    assert options["timeout"] == 20
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]


def test_sqlite_url_gets_the_same_options(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    options = load_settings_beside(tmp_path)["DATABASES"]["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"


def test_postgres_gets_no_sqlite_options(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop")
    database = load_settings_beside(tmp_path)["DATABASES"]["default"]
    options = database.get("OPTIONS", {})
    assert "transaction_mode" not in options and "timeout" not in options
    assert "init_command" not in options


def test_postgres_pools_connections_and_checks_them_before_lending(tmp_path, monkeypatch):
    # Not CONN_MAX_AGE: under daphne a kept connection is never reused (see test_burst.py).
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop")
    unset(
        monkeypatch,
        "CONN_MAX_AGE",
        "DATABASE_POOL_MIN_SIZE",
        "DATABASE_POOL_MAX_SIZE",
        "DATABASE_POOL_TIMEOUT",
    )
    database = load_settings_beside(tmp_path)["DATABASES"]["default"]
    assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 10, "timeout": 10.0}
    assert database["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert database["CONN_HEALTH_CHECKS"] is True  # Django passes it on as the pool's check


def test_the_pool_sizes_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop")
    monkeypatch.setenv("DATABASE_POOL_MIN_SIZE", "3")
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "20")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT", "2.5")
    pool = load_settings_beside(tmp_path)["DATABASES"]["default"]["OPTIONS"]["pool"]
    assert pool == {"min_size": 3, "max_size": 20, "timeout": 2.5}
    # A minimum above the maximum would make psycopg_pool refuse to start: capped.
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "2")
    (tmp_path / "again").mkdir()
    pool = load_settings_beside(tmp_path / "again")["DATABASES"]["default"]["OPTIONS"]["pool"]
    assert pool["min_size"] == 2 and pool["max_size"] == 2


def test_a_pool_size_of_0_turns_the_pool_off_for_wsgi(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop")
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "0")
    monkeypatch.setenv("CONN_MAX_AGE", "60")
    database = load_settings_beside(tmp_path)["DATABASES"]["default"]
    assert "pool" not in database.get("OPTIONS", {})
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True


def test_the_settings_pool_is_one_django_opens(tmp_path, monkeypatch):
    # Django builds psycopg_pool's pool from OPTIONS["pool"] (unopened until the first query).
    from django.db.backends.postgresql.base import DatabaseWrapper

    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop")
    unset(monkeypatch, "DATABASE_POOL_MIN_SIZE", "DATABASE_POOL_MAX_SIZE", "DATABASE_POOL_TIMEOUT")
    database = load_settings_beside(tmp_path)["DATABASES"]["default"]
    wrapper = DatabaseWrapper({**database, "TIME_ZONE": None, "AUTOCOMMIT": True}, alias="pooled")
    try:
        pool = wrapper.pool
        assert (pool.min_size, pool.max_size, pool.timeout) == (1, 10, 10.0)
    finally:
        wrapper.close_pool()


def test_mysql_keeps_no_connection_by_default(tmp_path, monkeypatch):
    # No pool in Django for MySQL, and under daphne a kept connection is never reused.
    monkeypatch.setenv("DATABASE_URL", "mysql://shop@127.0.0.1:3306/shop")
    unset(monkeypatch, "CONN_MAX_AGE")
    database = load_settings_beside(tmp_path)["DATABASES"]["default"]
    assert database["CONN_MAX_AGE"] == 0
    assert database["CONN_HEALTH_CHECKS"] is True
    monkeypatch.setenv("CONN_MAX_AGE", "60")  # under WSGI
    (tmp_path / "again").mkdir()
    assert load_settings_beside(tmp_path / "again")["DATABASES"]["default"]["CONN_MAX_AGE"] == 60


def test_the_example_logging_prints_each_record_once_under_daphne(tmp_path):
    # Daphne gives the root logger a StreamHandler; the example's loggers have their own, and
    # used to propagate to root's too, so every "conversation created" line came twice.
    # In a subprocess: dictConfig replaces the process's handlers, pytest's among them.
    script = f"""
import logging, logging.config, runpy, sys
settings = runpy.run_path({str(SETTINGS)!r})
logging.config.dictConfig(settings["LOGGING"])
root = logging.getLogger()
root.addHandler(logging.StreamHandler(sys.stderr))  # what daphne's logging setup adds
root.setLevel(logging.INFO)
logging.getLogger("voice_widget.api").info("conversation created: room-1")
logging.getLogger("agent_runner.worker").info("job started: room-1")
logging.getLogger("voice_widget").warning("persona missing")
"""
    env = {**os.environ, "DEBUG": "True", "SECRET_KEY": "k" * 50}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    for message in ("conversation created: room-1", "job started: room-1", "persona missing"):
        assert sum(message in line for line in lines) == 1, lines


def test_redis_url_gives_the_throttles_a_shared_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/2")
    caches = load_settings_beside(tmp_path)["CACHES"]
    assert caches["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/2",
    }


def test_without_redis_url_the_site_keeps_djangos_default_cache(tmp_path, monkeypatch):
    unset(monkeypatch, "REDIS_URL")
    assert "CACHES" not in load_settings_beside(tmp_path)
