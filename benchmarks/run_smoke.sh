#!/usr/bin/env bash
# Every benchmark once with --smoke (tiny sizes, seconds each), so none breaks unnoticed; .ci/run runs it.
# The figures of a smoke run mean nothing: see docs/performance.md for real runs.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
export QT_QPA_PLATFORM=offscreen
# Every benchmark (each module of this folder but the shared helpers) has a --smoke mode.
for bench in benchmarks/*.py; do
  [ "$(basename "$bench")" = measure.py ] && continue
  start=$(date +%s)
  if ! out=$("$python" "$bench" --smoke 2>&1); then
    printf '%s\n' "$out" >&2
    echo "benchmark smoke run failed: $bench" >&2
    exit 1
  fi
  echo "smoke ok: $bench ($(( $(date +%s) - start )) s)"
done
# The fleet against a hub on PostgreSQL: only where a scratch server is given (.ci/postgres.sh prints one).
if [ -n "${KIOSK_TEST_PG_URL:-}" ]; then
  start=$(date +%s)
  if ! out=$("$python" benchmarks/fleet.py --smoke 2>&1); then
    printf '%s\n' "$out" >&2
    echo "benchmark smoke run failed: benchmarks/fleet.py" >&2
    exit 1
  fi
  echo "smoke ok: benchmarks/fleet.py ($(( $(date +%s) - start )) s)"
fi
