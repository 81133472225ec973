#!/usr/bin/env bash
# A Docker engine for the compose smoke and the testcontainers backend. An engine that already
# answers (DOCKER_HOST, or the default socket) is used as it is; otherwise the project starts a
# daemon of its own: Debian's docker.io, its own data root, exec root and socket, no bridge
# network and no iptables rules, so containers run with host networking on this machine only.
#
# Usage: scripts/docker.sh COMMAND
#   install    apt-get install docker.io if dockerd is missing (needs root)
#   start      use a reachable engine, or install if needed and start our own daemon; wait
#              until `docker info` answers. Prints the DOCKER_HOST to use.
#   stop       stop the daemon this script started (never another engine); its containers stop
#   status     print which engine answers (exit 0 one answers, 3 none)
#   host       print the DOCKER_HOST value of the engine to use (exit 3 if none answers)
#   env        print `export DOCKER_HOST=...` for eval
#
# Environment (defaults in brackets):
#   DOCKER_HOST                an engine to use instead of starting one
#   DUBAN_DOCKER_DIR           daemon state: socket, pid file, exec root, log [<repo>/.run/docker]
#   DUBAN_DOCKER_DATA_ROOT     images and containers (kept between runs) [<repo>/.cache/docker]
#   DUBAN_DOCKER_START_TIMEOUT seconds to wait for the daemon [60]
#   DUBAN_DOCKER_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL [30]
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)

DDIR=${DUBAN_DOCKER_DIR:-$REPO_ROOT/.run/docker}
DATA_ROOT=${DUBAN_DOCKER_DATA_ROOT:-$REPO_ROOT/.cache/docker}
START_TIMEOUT=${DUBAN_DOCKER_START_TIMEOUT:-60}
STOP_TIMEOUT=${DUBAN_DOCKER_STOP_TIMEOUT:-30}

NAME=docker
# shellcheck source=lib/daemon.sh source-path=SCRIPTDIR
source "$SCRIPT_DIR/lib/daemon.sh"   # say, die, show, live_pid, lock_dir, log_tail, stop_pid

for p in "$START_TIMEOUT" "$STOP_TIMEOUT"; do
  [[ $p =~ ^[0-9]+$ ]] || die "not a number: '$p' (check the DUBAN_DOCKER_* variables)"
done
case $DDIR in /*) ;; *) DDIR="$PWD/$DDIR" ;; esac
case $DATA_ROOT in /*) ;; *) DATA_ROOT="$PWD/$DATA_ROOT" ;; esac
SOCKET="$DDIR/docker.sock"
OWN_HOST="unix://$SOCKET"
PID_FILE="$DDIR/dockerd.pid"
LOG_FILE="$DDIR/dockerd.log"
EXEC_ROOT="$DDIR/exec"

command -v docker >/dev/null 2>&1 || die "the docker command is missing (Debian: apt-get install docker.io)"

answers() { DOCKER_HOST=$1 timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

daemon_pid() { live_pid "$PID_FILE" "--exec-root $EXEC_ROOT"; }

# The engine to use: DOCKER_HOST if set and answering, else ours if it runs, else the default
# socket. Prints it; returns 1 when none answers.
reachable_host() {
  if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != "$OWN_HOST" ]]; then
    answers "$DOCKER_HOST" && { printf '%s' "$DOCKER_HOST"; return 0; }
    return 1
  fi
  if daemon_pid >/dev/null && answers "$OWN_HOST"; then
    printf '%s' "$OWN_HOST"; return 0
  fi
  if [[ -S /var/run/docker.sock ]] && answers unix:///var/run/docker.sock; then
    printf '%s' unix:///var/run/docker.sock; return 0
  fi
  return 1
}

cmd_install() {
  command -v dockerd >/dev/null 2>&1 && return 0
  [[ $EUID -eq 0 ]] || die "dockerd is missing, and installing it needs root (apt-get install docker.io)"
  command -v apt-get >/dev/null 2>&1 || die "dockerd is missing and so is apt-get: install a Docker engine"
  say "installing Debian's docker.io (dockerd, containerd, runc) with apt-get ..."
  # Keep the package scripts from starting the system's default daemon: we run our own.
  local policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from scripts/docker.sh install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  local out
  out=$(apt-get update -qq 2>&1) || { printf '%s\n' "$out" >&2; die "apt-get update failed"; }
  out=$(apt-get install -y -qq --no-install-recommends docker.io 2>&1) ||
    { printf '%s\n' "$out" >&2; die "apt-get install docker.io failed"; }
  command -v dockerd >/dev/null 2>&1 || die "apt-get installed docker.io, but there is no dockerd"
  say "installed $(dockerd --version)"
}

server_log_tail() { log_tail 30 "$LOG_FILE"; }

cmd_start() {
  local host
  if host=$(reachable_host); then
    say "using the engine at $host ($(DOCKER_HOST=$host docker info --format 'Docker {{.ServerVersion}}, {{.Driver}}'))"
    return 0
  fi
  if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != "$OWN_HOST" ]]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to let this script start a daemon"
  fi
  [[ $EUID -eq 0 ]] || die "no Docker engine answers, and starting one needs root"
  cmd_install
  lock_dir "$DDIR" 120
  local pid
  if ! pid=$(daemon_pid); then
    rm -f "$PID_FILE" "$SOCKET"
    mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
    # No bridge, no iptables, no NAT: containers are started with --network host (or none).
    (
      exec 8>&- 9>&-
      exec setsid dockerd --host "$OWN_HOST" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
        --pidfile "$PID_FILE" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        --userland-proxy=false --log-level warn </dev/null >"$LOG_FILE" 2>&1
    ) &
    local i
    for i in $(seq 100); do [[ -s $PID_FILE ]] && break; sleep 0.1; done
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ -n $pid ]] || { server_log_tail; die "dockerd did not start"; }
    say "started dockerd pid $pid (socket $(show "$SOCKET"), data $(show "$DATA_ROOT")); waiting for it"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers "$OWN_HOST"; do
    starting_or_die "$pid" "$deadline" dockerd "did not answer within ${START_TIMEOUT}s"
    sleep 0.3
  done
  say "ready: DOCKER_HOST=$OWN_HOST ($(DOCKER_HOST=$OWN_HOST docker info --format 'Docker {{.ServerVersion}}, storage {{.Driver}}'); log $(show "$LOG_FILE"))"
}

# dockerd leaves its network namespace (and, after a SIGKILL, overlay mounts) mounted under its
# own directories; unmounted here, deepest first, so the checkout can be removed afterwards.
unmount_leftovers() {
  local mounted
  mounted=$(awk -v a="$EXEC_ROOT/" -v b="$DATA_ROOT/" \
    'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/self/mounts | sort -r)
  [[ -n $mounted ]] || return 0
  while IFS= read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null ||
      say "could not unmount $(show "$target")"
  done <<<"$mounted"
}

cmd_stop() {
  local pid
  if ! pid=$(daemon_pid); then
    rm -f "$PID_FILE"
    say "no daemon of ours runs ($(show "$DDIR")); other engines are left alone"
    return 0
  fi
  lock_dir "$DDIR" 120
  local left
  left=$(DOCKER_HOST=$OWN_HOST timeout 10 docker ps -q 2>/dev/null | wc -l || true)
  [[ ${left:-0} == 0 ]] || say "stopping $left running container(s) with the daemon"
  stop_pid "$pid" "$STOP_TIMEOUT"
  rm -f "$PID_FILE"
  unmount_leftovers
  say "stopped dockerd pid $pid ($(show "$DDIR")); images stay in $(show "$DATA_ROOT")"
}

cmd_status() {
  local host
  if host=$(reachable_host); then
    local who=existing
    [[ $host == "$OWN_HOST" ]] && who="ours (pid $(daemon_pid))"
    say "engine answers at $host: $who, $(DOCKER_HOST=$host docker info --format 'Docker {{.ServerVersion}}, {{.Driver}}, {{.Containers}} containers, {{.Images}} images')"
    return 0
  fi
  say "no engine answers (ours: $(show "$DDIR"))"
  return 3
}

case ${1:-} in
  install) cmd_install; say "dockerd: $(command -v dockerd)" ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  host) reachable_host || exit 3 ;;
  env) h=$(reachable_host) || exit 3; printf 'export DOCKER_HOST=%q\n' "$h" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
