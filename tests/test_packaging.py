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
