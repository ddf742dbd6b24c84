"""The README's "Add it to your project", followed in a new project with this repository's wheel.

``django-admin startproject`` in a temporary directory, the wheel built from this checkout
installed into a fresh virtualenv (which sees the dependencies already installed here, so
nothing is downloaded), the settings and URLs taken from the README's code blocks (so this
fails when the README drifts), ``migrate``, then the schema and a session through Django's
test client, all run by the new project's own ``manage.py``.
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: What the new project's manage.py runs once migrated: a persona, the schema, a session.
SCRIPT = """
import json
from pathlib import Path

import voice_widget
from django.test import Client
from django.test.utils import setup_test_environment

from django.utils import timezone
from voice_widget.models import Persona, WorkerHeartbeat

setup_test_environment()
Persona.objects.create(
    name="Ben", slug="ben", instructions="You help visitors.", greeting="Hi!", language="en"
)
# What a running worker writes (sessions are opened only while one serves them).
WorkerHeartbeat.objects.create(
    worker_id="install-test", agent_name="voice-widget", host="here", pid=1,
    started_at=timezone.now(), last_seen=timezone.now(),
)
client = Client()
schema = client.get("/voice-widget/api/schema/")
session = client.post(
    "/voice-widget/api/sessions/", {"persona": "ben"}, content_type="application/json"
)
print(json.dumps({
    "voice_widget": str(Path(voice_widget.__file__).resolve()),
    "schema_status": schema.status_code,
    "schema_paths": sorted(schema.json()["paths"]) if schema.status_code == 200 else [],
    "session_status": session.status_code,
    "session": session.json(),
}))
"""


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def add_to_your_project() -> tuple[str, str]:
    """The README's (shell, python) code blocks of "Add it to your project"."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", readme_section("Add it to your project"), re.DOTALL)
    shell = next(code for lang, code in blocks if lang == "sh")
    python = next(code for lang, code in blocks if lang == "python")
    return shell, python


def readme_settings_and_urls() -> tuple[dict, list[str]]:
    """What the README's settings.py part assigns, and the path(...) lines of its urls.py part."""
    _, python = add_to_your_project()
    settings_part, urls_part = python.split("# urls.py")
    namespace: dict = {}
    exec(settings_part, namespace)  # literals only: lists, strings, a dict
    settings = {name: value for name, value in namespace.items() if name.isupper()}
    url_lines = re.findall(r"^\s*(path\(.*\),)\s*$", urls_part, re.MULTILINE)
    return settings, url_lines


def apply_readme_settings(settings_py: Path, settings: dict) -> None:
    """Add the README's settings the way its comments say: apps after the project's own,
    middleware before CommonMiddleware, everything else as written."""
    lines = ["", "# From django-voice-widget's README, 'Add it to your project'"]
    for name, value in settings.items():
        if name == "INSTALLED_APPS":
            lines.append(f"INSTALLED_APPS += {value!r}")
        elif name == "MIDDLEWARE":
            lines.append(
                "MIDDLEWARE[MIDDLEWARE.index('django.middleware.common.CommonMiddleware'):0] = "
                f"{value!r}"
            )
        else:
            lines.append(f"{name} = {value!r}")
    settings_py.write_text(settings_py.read_text() + "\n".join(lines) + "\n")


def apply_readme_urls(urls_py: Path, url_lines: list[str]) -> None:
    text = urls_py.read_text().replace(
        "from django.urls import path", "from django.urls import include, path"
    )
    urls_py.write_text(text + "\nurlpatterns += [\n    " + "\n    ".join(url_lines) + "\n]\n")


def run(args: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def test_the_readme_says_how_to_install_without_pypi():
    shell, _ = add_to_your_project()
    commands = [line.split("#")[0].strip() for line in shell.splitlines()]
    assert "pip install django-voice-widget" not in commands  # not on PyPI
    assert any(re.fullmatch(r"pip install dist/django_voice_widget-\*\.whl", c) for c in commands)
    assert "python -m build --wheel" in commands


def test_the_readme_steps_work_in_a_new_project(tmp_path):
    settings, url_lines = readme_settings_and_urls()
    assert "voice_widget" in settings["INSTALLED_APPS"] and url_lines

    # The README's wheel: python -m build --wheel, then pip install dist/django_voice_widget-*.whl
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist],
        ROOT,
        dict(os.environ),
    )
    (wheel,) = dist.glob("django_voice_widget-*.whl")

    # A fresh virtualenv that sees this one's dependencies (but not this checkout).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, dict(os.environ))
    python = venv / "bin" / "python"
    venv_site = Path(
        run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path, {}
        ).stdout.strip()
    )
    (venv_site / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        # The README keeps the key and secret in the environment.
        "LIVEKIT_API_KEY": "APIinstalltest",
        "LIVEKIT_API_SECRET": "install-test-secret-that-is-long-enough-0123456789",
    }
    run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
         "--ignore-installed", "--no-index", "--quiet", wheel],
        tmp_path,
        {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip

    project = tmp_path / "hostsite"
    project.mkdir()
    run([python, "-m", "django", "startproject", "hostsite", "."], project, env)
    apply_readme_settings(project / "hostsite" / "settings.py", settings)
    apply_readme_urls(project / "hostsite" / "urls.py", url_lines)

    run([python, "manage.py", "migrate", "--verbosity", "0"], project, env)
    check = run([python, "manage.py", "check"], project, env)
    assert "System check identified no issues" in check.stdout, check.stderr

    out = run([python, "manage.py", "shell", "-c", textwrap.dedent(SCRIPT)], project, env)
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(answer["voice_widget"]).is_relative_to(venv), "not the installed wheel"
    assert answer["schema_status"] == 200
    assert "/voice-widget/api/sessions/" in answer["schema_paths"]
    assert answer["session_status"] == 201, answer["session"]
    assert answer["session"]["server_url"] == settings["VOICE_WIDGET"]["LIVEKIT_URL"]
    assert answer["session"]["participant_token"]
