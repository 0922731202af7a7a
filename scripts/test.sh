#!/usr/bin/env bash
# The whole test suite, as CI runs it: the fast default tests, then the slower simulator and
# end-to-end tests (marked `sim` / `slow`). `.venv/bin/python -m pytest` alone runs the fast part.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "no .venv: run 'bash scripts/setup.sh' first" >&2; exit 2; }
"$PY" -m pytest -q -m "not slow" "$@"
# slow tests: exit code 5 means none are collected yet, which is fine
set +e; "$PY" -m pytest -q -m "slow" "$@"; rc=$?; set -e
[ "$rc" -eq 5 ] && rc=0
exit "$rc"
