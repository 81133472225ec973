#!/usr/bin/env bash
# The import contracts (import-linter): the repository's own (.importlinter: the services never
# import each other, the shared package imports no service) and each service's
# (services/<service>/.importlinter: its layers, a domain without I/O, no cycles).
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"
status=0
for config in .importlinter services/*/.importlinter; do
  [[ -f $config ]] || continue
  echo "import contracts: $config"
  .venv/bin/lint-imports --config "$config" --no-cache || status=1
done
exit $status
