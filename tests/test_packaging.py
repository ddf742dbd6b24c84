"""The wheel carries templates, migrations and static files, not the example site."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_app_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("django_voice_widget-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "voice_widget/migrations/0001_initial.py" in names
    assert "voice_widget/models.py" in names
    assert any(n.startswith("voice_widget/templates/voice_widget/") for n in names)
    assert any(n.startswith("voice_widget/static/voice_widget/") for n in names)
    assert not any(n.startswith(("example_site/", "tests/")) for n in names)


def test_web_install_carries_only_what_the_app_imports():
    """daphne and django-environ serve and configure the example site, not the app."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    assert "daphne" not in base and "django-environ" not in base
    example = " ".join(project["optional-dependencies"]["example"])
    assert "daphne" in example and "django-environ" in example
    # Every dependency of the worker's extra has an upper bound: an incompatible major or
    # minor release fails at install time, not in a running worker.
    assert all("<" in spec for spec in project["optional-dependencies"]["agent"])
    app_sources = [
        *ROOT.joinpath("voice_widget").rglob("*.py"),
        *ROOT.joinpath("agent_runner").rglob("*.py"),
    ]
    for source in app_sources:
        text = source.read_text()
        assert "import daphne" not in text and "import environ" not in text, source
