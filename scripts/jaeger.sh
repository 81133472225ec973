#!/usr/bin/env bash
# A real trace backend for development and tests: Jaeger v2 (all-in-one: OTLP receivers, an
# in-memory trace store, the query API) on 127.0.0.1 only, built from source with `go build`
# from the tools module deploy/jaeger/go.mod (the version and every checksum are committed).
#
# Usage: scripts/jaeger.sh COMMAND
#   build      build the binary into .cache/bin/jaeger-<version> (once; rebuilt when go.mod or
#              go.sum or the Go version change). The first build downloads the modules and
#              compiles (minutes); with Go's caches warm (GOMODCACHE, GOCACHE) it only links.
#   start      build if needed, start Jaeger in the background (config deploy/jaeger/config.yaml),
#              wait until its query API answers
#   stop       SIGTERM, wait up to DUBAN_JAEGER_STOP_TIMEOUT, then SIGKILL
#   status     print whether it runs (exit 0 running, 3 not running)
#
# Send traces with the standard variables, e.g.
#   OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318
# and read them at http://127.0.0.1:16686/api/traces?service=duban-progress or
# /api/v3/traces/<trace id>. The query port also serves the UI page; a binary built from the
# Go module has no UI assets (Jaeger ships them only in its release builds), so that page is a
# placeholder and the API is the way in.
#
# Environment (defaults in brackets):
#   DUBAN_JAEGER_OTLP_HTTP_PORT   OTLP/HTTP receiver on 127.0.0.1 [14318]
#   DUBAN_JAEGER_OTLP_GRPC_PORT   OTLP/gRPC receiver on 127.0.0.1 [14317]
#   DUBAN_JAEGER_UI_PORT          query API (HTTP) and UI page on 127.0.0.1 [16686]
#   DUBAN_JAEGER_QUERY_GRPC_PORT  query API (gRPC) on 127.0.0.1 [16685]
#   DUBAN_JAEGER_MAX_TRACES       traces kept in memory; the oldest are dropped beyond [20000]
#   DUBAN_JAEGER_DIR              state dir: pid file, jaeger.log [<repo>/.run/jaeger]
#   DUBAN_JAEGER_CONFIG           Jaeger config [<repo>/deploy/jaeger/config.yaml]
#   DUBAN_JAEGER_START_TIMEOUT    seconds to wait for the query API [60]
#   DUBAN_JAEGER_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL [10]
#   GO                            the go command [go on PATH, else /usr/local/go/bin/go]
# Several independent instances can run side by side with their own DUBAN_JAEGER_DIR and ports.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
TOOLS_DIR="$REPO_ROOT/deploy/jaeger"
BIN_DIR="$REPO_ROOT/.cache/bin"
PACKAGE=github.com/jaegertracing/jaeger/cmd/jaeger

OTLP_HTTP_PORT=${DUBAN_JAEGER_OTLP_HTTP_PORT:-14318}
OTLP_GRPC_PORT=${DUBAN_JAEGER_OTLP_GRPC_PORT:-14317}
UI_PORT=${DUBAN_JAEGER_UI_PORT:-16686}
QUERY_GRPC_PORT=${DUBAN_JAEGER_QUERY_GRPC_PORT:-16685}
MAX_TRACES=${DUBAN_JAEGER_MAX_TRACES:-20000}
JDIR=${DUBAN_JAEGER_DIR:-$REPO_ROOT/.run/jaeger}
CONFIG=${DUBAN_JAEGER_CONFIG:-$TOOLS_DIR/config.yaml}
START_TIMEOUT=${DUBAN_JAEGER_START_TIMEOUT:-60}
STOP_TIMEOUT=${DUBAN_JAEGER_STOP_TIMEOUT:-10}

NAME=jaeger
# shellcheck source=lib/daemon.sh source-path=SCRIPTDIR
source "$SCRIPT_DIR/lib/daemon.sh"   # say, die, show, port_open, live_pid, lock_dir, log_tail, stop_pid

for p in "$OTLP_HTTP_PORT" "$OTLP_GRPC_PORT" "$UI_PORT" "$QUERY_GRPC_PORT" "$MAX_TRACES" \
  "$START_TIMEOUT" "$STOP_TIMEOUT"; do
  [[ $p =~ ^[0-9]+$ ]] || die "not a number: '$p' (check the DUBAN_JAEGER_* variables)"
done
[[ $(printf '%s\n' "$OTLP_HTTP_PORT" "$OTLP_GRPC_PORT" "$UI_PORT" "$QUERY_GRPC_PORT" | sort -u | wc -l) == 4 ]] ||
  die "the four DUBAN_JAEGER_*_PORT values must differ"

# Make paths absolute (they may be given relative to the current directory).
case $JDIR in /*) ;; *) JDIR="$PWD/$JDIR" ;; esac
case $CONFIG in /*) ;; *) CONFIG="$PWD/$CONFIG" ;; esac
PID_FILE="$JDIR/jaeger.pid"
LOG_FILE="$JDIR/jaeger.log"
QUERY_URL="http://127.0.0.1:$UI_PORT"


# The Jaeger version the tools module requires (its go.mod is the one place it is written).
jaeger_version() {
  awk '$1 == "github.com/jaegertracing/jaeger" && $2 ~ /^v/ { print $2; exit }' "$TOOLS_DIR/go.mod"
}
VERSION=$(jaeger_version)
[[ -n $VERSION ]] || die "no github.com/jaegertracing/jaeger requirement in $(show "$TOOLS_DIR/go.mod")"
BIN="$BIN_DIR/jaeger-${VERSION#v}"
STAMP="$BIN.stamp"

GO_CMD=
need_go() {
  if [[ -n ${GO:-} ]]; then
    GO_CMD=$GO
  elif command -v go >/dev/null 2>&1; then
    GO_CMD=$(command -v go)
  elif [[ -x /usr/local/go/bin/go ]]; then
    GO_CMD=/usr/local/go/bin/go
  else
    die "go not found; Jaeger is built from source with Go $(go_wanted)+ (Debian: apt-get install golang-go, if recent enough)"
  fi
  local have wanted
  have=$("$GO_CMD" env GOVERSION 2>/dev/null) || die "$GO_CMD does not run"
  have=${have#go}
  wanted=$(go_wanted)
  [[ $(printf '%s\n' "$wanted" "$have" | sort -V | head -n 1) == "$wanted" ]] ||
    die "$GO_CMD is Go $have; building Jaeger $VERSION needs Go $wanted or newer"
}

go_wanted() { awk '$1 == "go" { print $2; exit }' "$TOOLS_DIR/go.mod"; }

stamp_text() {
  printf 'jaeger %s %s go.mod %s go.sum %s\n' "$VERSION" "$("$GO_CMD" env GOVERSION)" \
    "$(sha256sum "$TOOLS_DIR/go.mod" | cut -d' ' -f1)" "$(sha256sum "$TOOLS_DIR/go.sum" | cut -d' ' -f1)"
}

built() { [[ -x $BIN && -f $STAMP && "$(cat "$STAMP")" == "$(stamp_text)" ]]; }

build() {
  local verbose=${1:-}
  need_go
  if built; then
    [[ -z $verbose ]] || say "Jaeger $VERSION already built: $(show "$BIN")"
    return 0
  fi
  mkdir -p "$BIN_DIR"
  # One build at a time for every run sharing this cache.
  exec 8>"$BIN_DIR/.jaeger-build.lock"
  flock 8
  if built; then exec 8>&-; return 0; fi
  local tmp="$BIN.tmp.$$" t0=$SECONDS out
  say "building Jaeger $VERSION with $("$GO_CMD" env GOVERSION) (first time: downloads modules and compiles for minutes; later builds reuse Go's caches) ..."
  # go's output is shown only when it fails
  if ! out=$(cd "$TOOLS_DIR" && "$GO_CMD" build -mod=readonly -o "$tmp" \
      -ldflags "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$VERSION" \
      "$PACKAGE" 2>&1); then
    printf '%s\n' "$out" >&2
    rm -f "$tmp"
    die "go build of Jaeger $VERSION failed (see above)"
  fi
  mv "$tmp" "$BIN"
  stamp_text >"$STAMP"
  exec 8>&-
  say "built Jaeger $VERSION in $((SECONDS - t0))s: $(show "$BIN") ($(du -h "$BIN" | cut -f1))"
}

query_answers() { curl -fsS -o /dev/null --max-time 3 "$QUERY_URL/api/services" 2>/dev/null; }

# Prints Jaeger's pid if the pid file names a live Jaeger of this state dir.
jaeger_pid() { live_pid "$PID_FILE" "--config file:$CONFIG"; }

lock_state_dir() { lock_dir "$JDIR" 60; }

server_log_tail() { log_tail 30 "$LOG_FILE"; }

wait_ready() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
  until query_answers && port_open "$OTLP_HTTP_PORT"; do
    starting_or_die "$pid" "$deadline" Jaeger \
      "did not answer at $QUERY_URL (query API) within ${START_TIMEOUT}s"
    sleep 0.2
  done
}

where() {
  printf 'OTLP http://127.0.0.1:%s (gRPC 127.0.0.1:%s), query API %s, log %s' \
    "$OTLP_HTTP_PORT" "$OTLP_GRPC_PORT" "$QUERY_URL" "$(show "$LOG_FILE")"
}

cmd_start() {
  build
  [[ -f $CONFIG ]] || die "config $(show "$CONFIG") not found"
  command -v curl >/dev/null 2>&1 || die "curl not found (Debian: apt-get install curl)"
  lock_state_dir
  local pid port
  if pid=$(jaeger_pid); then
    if query_answers; then
      say "already running (pid $pid): $(where)"
      return 0
    fi
    say "pid $pid is starting; waiting for it"
  else
    rm -f "$PID_FILE"
    for port in "$OTLP_HTTP_PORT" "$OTLP_GRPC_PORT" "$UI_PORT" "$QUERY_GRPC_PORT"; do
      port_open "$port" &&
        die "127.0.0.1:$port is in use by another process (set the DUBAN_JAEGER_*_PORT variables)"
    done
    # setsid: Jaeger gets a session of its own and outlives the calling shell/terminal. The
    # inner shell writes its own pid, then execs Jaeger (same pid). The config reads the ports
    # and the trace limit from these variables; OTEL_* of the caller are not Jaeger's own.
    (
      cd "$JDIR"
      exec 8>&- 9>&-    # do not hand the lock files to Jaeger
      export DUBAN_JAEGER_OTLP_HTTP_PORT=$OTLP_HTTP_PORT DUBAN_JAEGER_OTLP_GRPC_PORT=$OTLP_GRPC_PORT \
        DUBAN_JAEGER_UI_PORT=$UI_PORT DUBAN_JAEGER_QUERY_GRPC_PORT=$QUERY_GRPC_PORT \
        DUBAN_JAEGER_MAX_TRACES=$MAX_TRACES
      while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^OTEL_' || true)
      # shellcheck disable=SC2016  # $$ and $0 belong to the inner shell
      exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
        "$BIN" --config "file:$CONFIG" </dev/null >"$LOG_FILE" 2>&1
    ) &
    for _ in $(seq 50); do [[ -s $PID_FILE ]] && break; sleep 0.1; done
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ -n $pid ]] || { server_log_tail; die "Jaeger did not start"; }
    say "started Jaeger $VERSION pid $pid; waiting for its query API"
  fi
  wait_ready "$pid"
  say "ready (pid $pid): $(where)"
}

cmd_stop() {
  lock_state_dir
  local pid
  if ! pid=$(jaeger_pid); then
    rm -f "$PID_FILE"
    say "not running ($(show "$JDIR"))"
    return 0
  fi
  stop_pid "$pid" "$STOP_TIMEOUT"
  rm -f "$PID_FILE"
  say "stopped Jaeger pid $pid ($(show "$JDIR")); its traces are gone (memory store)"
}

cmd_status() {
  local pid
  if pid=$(jaeger_pid); then
    if query_answers; then
      say "running (pid $pid): $(where)"
    else
      say "running (pid $pid) but $QUERY_URL does not answer yet (log $(show "$LOG_FILE"))"
    fi
    return 0
  fi
  say "not running ($(show "$JDIR"))"
  return 3
}

case ${1:-} in
  build) build verbose ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
