#!/usr/bin/env bash
# The whole test suite, called by `make test` (after ruff). Runs pytest on SQLite and,
# when DATABASE_URL points at PostgreSQL, again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== pytest on SQLite"
DATABASE_URL= "$BIN/pytest" -q

case "${DATABASE_URL:-}" in
  postgres://*|postgresql://*|pgsql://*)
    echo "== pytest on PostgreSQL (${DATABASE_URL%%@*}@…)"
    "$BIN/pytest" -q
    ;;
  *)
    echo "== PostgreSQL run skipped: set DATABASE_URL=postgres://… to run it too"
    ;;
esac
