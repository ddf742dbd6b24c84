#!/usr/bin/env bash
# The whole test suite, called by `make test` (after ruff). Builds and unit-tests the widget
# when npm is present, makes sure Chromium is there for the browser tests, then runs pytest on
# SQLite and, when DATABASE_URL points at PostgreSQL, again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV_BIN:-.venv/bin}
PYTEST_ARGS=()

# ---- the widget's front end: npm ci, node unit tests, the committed bundle is a fresh build
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  echo "== widget: npm ci, unit tests (node --test), bundle is reproducible and committed"
  (cd static/widget && npm ci --no-audit --no-fund && npm test)
  DATABASE_URL= "$BIN/pytest" -q tests/test_widget_bundle.py
else
  echo "== widget: npm/node not found; skipped npm ci, the widget's unit tests and the bundle"
  echo "   check (install Node.js 20+ to run them). The committed bundle is used as it is."
fi

# ---- Chromium for the browser tests (Debian's package; Playwright drives it)
chromium_found() {
  [ -n "${VOICE_WIDGET_CHROMIUM:-}" ] && [ -x "${VOICE_WIDGET_CHROMIUM}" ] && return 0
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || [ -x /usr/bin/chromium ]
}
if ! chromium_found && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
  fi
  if [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; then
    echo "== installing Debian's chromium for the browser tests (apt-get)"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium \
      || echo "   apt-get could not install chromium"
  fi
fi
if chromium_found; then
  echo "== browser tests: $(command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)"
else
  echo "== browser tests SKIPPED: no Chromium found and apt-get could not install it"
  echo "   (apt-get install chromium, or set VOICE_WIDGET_CHROMIUM=/path/to/chromium)."
  PYTEST_ARGS+=(-m "not browser")
fi

echo "== pytest on SQLite"
DATABASE_URL= "$BIN/pytest" -q ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}

case "${DATABASE_URL:-}" in
  postgres://*|postgresql://*|pgsql://*)
    echo "== pytest on PostgreSQL (${DATABASE_URL%%@*}@…)"
    "$BIN/pytest" -q ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}
    ;;
  *)
    echo "== PostgreSQL run skipped: set DATABASE_URL=postgres://… to run it too"
    ;;
esac
