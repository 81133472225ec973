#!/usr/bin/env bash
# Run the benchmarks (not tests) one after the other against the same broker and
# PostgreSQL: bench/consumer.py, bench/ingestion.py, bench/sweeper.py, bench/stall_mail.py,
# bench/board.py, bench/retention.py, bench/memory.py (long: 1M events). Figures are printed as
# `name value unit` lines, everything else as `# ` comments (grep -v '^#' for the figures).
# What they measure and the figures of the reference machine: docs/benchmarks.md.
#
# Usage: bash bench/run.sh [--quick]     (make bench runs it without --quick)
#   --quick   smoke run: small sizes, a minute or so in all
# The broker and PostgreSQL are started with scripts/kafka.sh and scripts/postgres.sh when they
# are not running, and left running (as make test does; `make down` stops them). To use other
# local servers, set DUBAN_BENCH_KAFKA_BOOTSTRAP and DUBAN_BENCH_PG_URL (loopback only).
# Each benchmark creates its own topics (prefix bench-<name>-<run id>.) and databases
# (duban_bench_<run id>_*) and removes them when it ends, also when interrupted.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

args=()
for arg in "$@"; do
  case $arg in
    --quick) args+=(--quick) ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'bench/run.sh: unknown option %s (only --quick; run a script alone for more)\n' "$arg" >&2; exit 2 ;;
  esac
done

[[ -x .venv/bin/python ]] || bash scripts/bootstrap.sh >&2
if [[ -z ${DUBAN_BENCH_KAFKA_BOOTSTRAP:-} ]]; then
  bash scripts/kafka.sh status >/dev/null 2>&1 || bash scripts/kafka.sh start >&2
fi
if [[ -z ${DUBAN_BENCH_PG_URL:-} ]]; then
  bash scripts/postgres.sh status >/dev/null 2>&1 || bash scripts/postgres.sh start >&2
fi

status=0
for name in consumer ingestion sweeper stall_mail board retention memory; do
  printf '# ==== bench/%s.py %s\n' "$name" "${args[*]:-}"
  started=$SECONDS
  .venv/bin/python "bench/$name.py" "${args[@]}" || { status=$?; printf '# bench/%s.py failed (exit %s)\n' "$name" "$status"; }
  printf '# bench/%s.py took %s s\n' "$name" "$((SECONDS - started))"
done
exit "$status"
