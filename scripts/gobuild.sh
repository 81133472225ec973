#!/usr/bin/env bash
# Builds a Go program of a tools module under deploy/ into .cache/bin/NAME, once: rebuilt only
# when go.mod, go.sum or the Go version change. The module's go.mod names the program with a
# `tool` line and pins it and every dependency (go.sum has the checksums).
#   scripts/gobuild.sh compose   Docker Compose (deploy/compose), .cache/bin/compose
#   scripts/gobuild.sh mailpit   Mailpit, the SMTP sink (deploy/mailpit), .cache/bin/mailpit
# Prints the binary's path. The first build downloads the modules and compiles (minutes); with
# Go's caches warm it only links. GO overrides the go command.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
NAME=gobuild
# shellcheck source=lib/daemon.sh source-path=SCRIPTDIR
source "$SCRIPT_DIR/lib/daemon.sh"   # say, die, show

what=${1:-}
[[ $what =~ ^[a-z][a-z0-9-]*$ && -f $REPO_ROOT/deploy/$what/go.mod ]] ||
  die "usage: scripts/gobuild.sh compose|mailpit (a tools module deploy/NAME/go.mod)"
MOD_DIR="$REPO_ROOT/deploy/$what"
BIN_DIR="$REPO_ROOT/.cache/bin"
BIN="$BIN_DIR/$what"
STAMP="$BIN.stamp"

if [[ -n ${GO:-} ]]; then GO_CMD=$GO
elif command -v go >/dev/null 2>&1; then GO_CMD=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then GO_CMD=/usr/local/go/bin/go
else die "go not found; $what is built from its Go module (install Go $(awk '$1 == "go" {print $2; exit}' "$MOD_DIR/go.mod")+)"
fi
package=$(awk '$1 == "tool" { print $2; exit }' "$MOD_DIR/go.mod")
[[ -n $package ]] || die "no tool line in $(show "$MOD_DIR/go.mod")"

stamp_text() {
  printf '%s %s go.mod %s go.sum %s\n' "$package" "$("$GO_CMD" env GOVERSION)" \
    "$(sha256sum "$MOD_DIR/go.mod" | cut -d' ' -f1)" "$(sha256sum "$MOD_DIR/go.sum" | cut -d' ' -f1)"
}
built() { [[ -x $BIN && -f $STAMP && "$(cat "$STAMP")" == "$(stamp_text)" ]]; }

mkdir -p "$BIN_DIR"
if ! built; then
  exec 8>"$BIN_DIR/.$what-build.lock"
  flock 8
  if ! built; then
    t0=$SECONDS
    say "building $package with $("$GO_CMD" env GOVERSION) (first time: downloads modules and compiles for minutes) ..." >&2
    if ! out=$(cd "$MOD_DIR" && "$GO_CMD" build -mod=readonly -o "$BIN.tmp.$$" "$package" 2>&1); then
      printf '%s\n' "$out" >&2
      rm -f "$BIN.tmp.$$"
      die "go build of $package failed (see above)"
    fi
    mv "$BIN.tmp.$$" "$BIN"
    stamp_text >"$STAMP"
    say "built $(show "$BIN") in $((SECONDS - t0))s" >&2
  fi
  exec 8>&-
fi
printf '%s\n' "$BIN"
