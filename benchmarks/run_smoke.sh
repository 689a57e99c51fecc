#!/usr/bin/env bash
# Every benchmark once with --smoke (tiny sizes, seconds each), so none breaks unnoticed; .ci/run runs it.
# The figures of a smoke run mean nothing: see docs/performance.md for real runs.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
export QT_QPA_PLATFORM=offscreen
# Every benchmark (each module of this folder but the shared helpers) has a --smoke mode. The fleet and the
# city-scale history run against a hub on PostgreSQL: only where a scratch server is given
# (.ci/postgres.sh prints one).
for bench in benchmarks/*.py; do
  [ "$(basename "$bench")" = measure.py ] && continue
  case "$(basename "$bench")" in fleet.py | scale.py) if [ -z "${KIOSK_TEST_PG_URL:-}" ]; then continue; fi ;; esac
  start=$(date +%s)
  if ! out=$("$python" "$bench" --smoke 2>&1); then
    printf '%s\n' "$out" >&2
    echo "benchmark smoke run failed: $bench" >&2
    exit 1
  fi
  echo "smoke ok: $bench ($(( $(date +%s) - start )) s)"
done
# The fleet's other two modes (a steady fleet at its live rates, a day's backlog sent at once).
if [ -n "${KIOSK_TEST_PG_URL:-}" ]; then
  for mode in "--steady 3" "--backlog"; do
    start=$(date +%s)
    # shellcheck disable=SC2086  # the mode is two words on purpose
    if ! out=$("$python" benchmarks/fleet.py $mode --smoke 2>&1); then
      printf '%s\n' "$out" >&2
      echo "benchmark smoke run failed: benchmarks/fleet.py $mode" >&2
      exit 1
    fi
    echo "smoke ok: benchmarks/fleet.py $mode ($(( $(date +%s) - start )) s)"
  done
fi
