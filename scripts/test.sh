#!/usr/bin/env bash
# The whole test suite, called by `make test` (after ruff). Builds and unit-tests the widget
# when npm is present, makes sure Chromium and espeak-ng are there for the browser and
# end-to-end tests, runs pytest on SQLite and, when DATABASE_URL points at PostgreSQL, again on
# PostgreSQL; then, once, the end-to-end tests (the widget and the real worker in one room)
# inside a private network namespace (scripts/netns-run.sh), on a shared SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV_BIN:-.venv/bin}
SKIP_BROWSER=""

# ---- the widget's front end: npm ci, node unit tests, the committed bundle is a fresh build
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  echo "== widget: npm ci, unit tests (node --test), bundle is reproducible and committed"
  (cd static/widget && npm ci --no-audit --no-fund && npm test)
  DATABASE_URL= "$BIN/pytest" -q tests/test_widget_bundle.py
else
  echo "== widget: npm/node not found; skipped npm ci, the widget's unit tests and the bundle"
  echo "   check (install Node.js 20+ to run them). The committed bundle is used as it is."
fi

# ---- Chromium for the browser tests (Debian's package; Playwright drives it), espeak-ng for
# the end-to-end tests' spoken questions, iproute2 for their network namespace, redis-server
# for the live page's (all from Debian)
chromium_found() {
  [ -n "${VOICE_WIDGET_CHROMIUM:-}" ] && [ -x "${VOICE_WIDGET_CHROMIUM}" ] && return 0
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || [ -x /usr/bin/chromium ]
}
MISSING=()
chromium_found || MISSING+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || MISSING+=(espeak-ng)
command -v ip >/dev/null 2>&1 || MISSING+=(iproute2)
# The live page's end-to-end test starts a Redis of its own inside the network namespace.
command -v redis-server >/dev/null 2>&1 || MISSING+=(redis-server)
if [ "${#MISSING[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
  fi
  if [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; then
    echo "== installing Debian's ${MISSING[*]} for the browser and end-to-end tests (apt-get)"
    $SUDO apt-get update -qq \
      && $SUDO apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null \
      || echo "   apt-get could not install ${MISSING[*]}"
  fi
fi
if chromium_found; then
  echo "== browser tests: $(command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)"
else
  echo "== browser tests SKIPPED: no Chromium found and apt-get could not install it"
  echo "   (apt-get install chromium, or set VOICE_WIDGET_CHROMIUM=/path/to/chromium)."
  SKIP_BROWSER=" and not browser"
fi

echo "== pytest on SQLite"
DATABASE_URL= "$BIN/pytest" -q -m "not e2e$SKIP_BROWSER"

case "${DATABASE_URL:-}" in
  postgres://*|postgresql://*|pgsql://*)
    # The install test builds a wheel into a new project of its own: once is enough.
    echo "== pytest on PostgreSQL (${DATABASE_URL%%@*}@…)"
    "$BIN/pytest" -q -m "not e2e and not install$SKIP_BROWSER"
    ;;
  *)
    echo "== PostgreSQL run skipped: set DATABASE_URL=postgres://… to run it too"
    ;;
esac

# ---- end-to-end: once (not per database), in a private network namespace, SQLite file
echo "== end-to-end tests (the widget and the real worker in one room; skipped with the reason"
echo "   where no network namespace, Chromium or espeak-ng is available)"
E2E_DB_DIR=$(mktemp -d)
trap 'rm -rf "$E2E_DB_DIR"' EXIT
VOICE_WIDGET_E2E_DB="$E2E_DB_DIR/db.sqlite3" DATABASE_URL= \
  scripts/netns-run.sh "$BIN/pytest" -q -m e2e --ds tests.e2e.settings -p no:cacheprovider tests/e2e
