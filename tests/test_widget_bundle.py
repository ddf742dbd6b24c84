"""The committed widget bundle is what `npm run build` makes from static/widget/, byte for byte.

Runs where npm is installed (CI installs it); skipped, with the reason, elsewhere. Python-only
users never build: they get the committed files in voice_widget/static/voice_widget/.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "static" / "widget"
COMMITTED = ROOT / "voice_widget" / "static" / "voice_widget"
FIRST_LOAD_LIMIT = 15 * 1024  # gzipped bytes of the script a page loads first

NPM = shutil.which("npm")
NODE = shutil.which("node")
needs_npm = pytest.mark.skipif(
    not (NPM and NODE), reason="npm/node not installed: the widget bundle check needs them"
)


#: Committed beside the bundle but not built: the persona admin's own script and stylesheet.
NOT_BUILT = "admin/"


def files_under(folder: Path) -> dict[str, bytes]:
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    return {name: content for name, content in files.items() if not name.startswith(NOT_BUILT)}


@pytest.fixture(scope="module")
def fresh_builds(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, bytes]]:
    if not (SOURCE / "node_modules").is_dir():
        result = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund"], cwd=SOURCE, capture_output=True, text=True
        )
        if result.returncode:
            pytest.fail(f"npm ci failed in static/widget:\n{result.stdout}\n{result.stderr}")
    builds = []
    for n in (1, 2):
        outdir = tmp_path_factory.mktemp(f"widget-build-{n}")
        result = subprocess.run(
            [NODE, "build.mjs"],
            cwd=SOURCE,
            env={**os.environ, "VOICE_WIDGET_OUTDIR": str(outdir)},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"npm run build failed:\n{result.stdout}\n{result.stderr}"
        builds.append(files_under(outdir))
    return builds


@needs_npm
def test_build_is_reproducible(fresh_builds):
    first, second = fresh_builds
    assert first == second


@needs_npm
def test_committed_bundle_equals_a_fresh_build(fresh_builds):
    committed = files_under(COMMITTED)
    fresh = fresh_builds[0]
    assert sorted(committed) == sorted(fresh), (
        "The committed bundle's files differ from a fresh build: run "
        "`npm ci && npm run build` in static/widget and commit voice_widget/static/voice_widget."
    )
    changed = [name for name in fresh if committed[name] != fresh[name]]
    assert not changed, f"Rebuild and commit the widget bundle; these differ: {changed}"


def test_bundle_has_no_build_machine_paths():
    for name, content in files_under(COMMITTED).items():
        text = content.decode("utf-8")
        assert str(ROOT) not in text, name
        assert not re.search(r"/(home|Users|work|tmp)/[\w.-]+/", text), name


def test_first_load_is_small_and_loads_livekit_lazily():
    entry = (COMMITTED / "voice-widget.js").read_bytes()
    size = len(gzip.compress(entry, compresslevel=9, mtime=0))
    assert size <= FIRST_LOAD_LIMIT, f"voice-widget.js is {size} bytes gzipped"
    text = entry.decode()
    assert not re.search(r'^import\s|[;}]import\s*[{"\w]', text), "no static imports at load"
    lazy = re.findall(r'import\("\./(chunks/[\w.-]+\.js)"\)', text)
    assert lazy, "livekit-client comes in through a dynamic import"
    for chunk in lazy:
        assert (COMMITTED / chunk).is_file()
    livekit = [chunk for chunk in lazy if "lk.transcription" in (COMMITTED / chunk).read_text()]
    assert len(livekit) == 1, "the LiveKit part is one lazy chunk"
    assert "lk.transcription" not in text


def test_languages_other_than_english_are_small_lazy_chunks():
    text = (COMMITTED / "voice-widget.js").read_text()
    assert "Start conversation" in text
    assert "Gespräch starten" not in text
    for name in ("de", "es", "fr", "pt", "ru"):
        (chunk,) = COMMITTED.glob(f"chunks/{name}-*.js")
        assert f'"./{chunk.relative_to(COMMITTED).as_posix()}"' in text
        assert len(gzip.compress(chunk.read_bytes(), mtime=0)) < 2048


def test_readme_states_the_gzipped_sizes():
    """The README's size table follows the committed bundle (within 0.3 KB)."""
    readme = (ROOT / "README.md").read_text()
    rows = {
        "voice-widget.js": COMMITTED / "voice-widget.js",
        "chunks/livekit-room-": next(COMMITTED.glob("chunks/livekit-room-*.js")),
    }
    for label, path in rows.items():
        match = re.search(rf"^\| `{re.escape(label)}[^\n]*\*\*([\d.]+) KB\*\*", readme, re.M)
        assert match is not None, f"the README's widget size table has no row for {label}"
        actual = len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)) / 1024
        assert abs(float(match.group(1)) - actual) <= 0.3, (
            f"{label}: README says {match.group(1)} KB, it is {actual:.1f} KB gzipped"
        )
