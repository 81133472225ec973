# shellcheck shell=bash
# Helpers for the scripts that run a local server in the background (kafka.sh, jaeger.sh,
# postgres.sh). Sourced, not run: the sourcing script sets NAME (the prefix of its messages)
# and REPO_ROOT first; for starting_or_die also PID_FILE and STOP_TIMEOUT, and it defines
# server_log_tail.

say() { printf '%s: %s\n' "$NAME" "$*"; }
die() { printf '%s: %s\n' "$NAME" "$*" >&2; exit 1; }

# A path for messages: relative to the repo root when inside it.
show() { case $1 in "$REPO_ROOT"/*) printf '%s' "${1#"$REPO_ROOT"/}" ;; *) printf '%s' "$1" ;; esac; }

# Whether something accepts connections on 127.0.0.1:PORT.
port_open() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# live_pid PID_FILE MARKER: prints the pid of PID_FILE if that process lives and its command
# line contains MARKER (so a recycled pid of another program is never taken for ours).
live_pid() {
  [[ -f $1 ]] || return 1
  local pid
  pid=$(cat "$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  printf '%s' "$pid"
}

# lock_dir DIR SECONDS: hold DIR/.lock (file descriptor 9) until the script exits, so that two
# runs never work on the same state dir at once.
lock_dir() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  flock -w "$2" 9 || die "another $NAME script is busy with $(show "$1")"
}

# log_tail LINES FILE...: the last lines of each non-empty file, on stderr.
log_tail() {
  local lines=$1 f
  shift
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '----- last lines of %s -----\n' "$(show "$f")" >&2
    tail -n "$lines" "$f" >&2
  done
}

# stop_pid PID SECONDS: SIGTERM, then SIGKILL if it still lives after SECONDS.
stop_pid() {
  local pid=$1 timeout=$2 waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if (( waited >= timeout * 5 )); then
      say "pid $pid still alive after ${timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
}

# starting_or_die PID DEADLINE WHO PROBLEM: one check while waiting for a server to start. Dies,
# with the server's last log lines, its pid file removed and the server stopped, when WHO (e.g.
# "the broker") has exited, or with PROBLEM (e.g. "did not open port 19092 within 90s") when
# DEADLINE (a value of $SECONDS) has passed.
starting_or_die() {
  local pid=$1 deadline=$2 who=$3 problem=$4
  if ! kill -0 "$pid" 2>/dev/null; then
    server_log_tail; rm -f "$PID_FILE"; die "$who exited during startup (see above)"
  fi
  if (( SECONDS >= deadline )); then
    server_log_tail; stop_pid "$pid" "$STOP_TIMEOUT"; rm -f "$PID_FILE"
    die "$who $problem; stopped it"
  fi
}
