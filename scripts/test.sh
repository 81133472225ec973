#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, a real Kafka broker and PostgreSQL
# (started if not running, left running for the next run), lint and types, then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k end_to_end
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"
started=$(date +%s)

bash scripts/bootstrap.sh
bash scripts/kafka.sh start
bash scripts/postgres.sh start

echo "test: ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "test: mypy (strict)"
.venv/bin/mypy shared/duban_shared services/registry/registry services/progress/progress \
  services/notifier/notifier

echo "test: pytest"
mkdir -p test-artifacts
set +e
.venv/bin/pytest --junitxml=test-artifacts/junit.xml "$@"
status=$?
set -e
echo "test: finished in $(( $(date +%s) - started ))s (pytest exit $status)"
exit $status
