"""example_site/settings.py: configured from the environment, and a .env file when there is one."""

import logging
import runpy
import shutil
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
