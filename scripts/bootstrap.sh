#!/usr/bin/env bash
# Creates .venv and installs the pinned dependencies and our four packages into it.
# Idempotent: does nothing when requirements.lock and the pyproject files are unchanged.
#
# Environment: DUBAN_PYTHON  interpreter to build the venv with [python3; needs 3.11+]
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"
PY=${DUBAN_PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.duban-deps

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "$PY not found; install Python 3.11+ (Debian: apt-get install python3 python3-venv)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PY is $("$PY" -V 2>&1); Duban needs Python 3.11+ (set DUBAN_PYTHON)"

want=$(cat requirements.lock shared/pyproject.toml services/*/pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
  say "dependencies up to date ($VENV)"
  exit 0
fi

if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV with $("$PY" -V 2>&1)"
  "$PY" -m venv "$VENV" || die "could not create a virtualenv (Debian: apt-get install python3-venv)"
fi
say "installing pinned dependencies (requirements.lock)"
PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.lock
PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
  -e shared -e services/registry -e services/progress -e services/notifier
echo "$want" > "$STAMP"
say "ready: $VENV"
