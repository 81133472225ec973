#!/usr/bin/env bash
# A PostgreSQL cluster of our own for development and tests, from Debian's packages: its own
# data dir, 127.0.0.1 only, its own port and socket dir; the Debian default cluster is not used.
#
# Usage: scripts/postgres.sh COMMAND
#   install    apt-get install postgresql if its server binaries are missing (needs root)
#   start      install if needed, initdb once, start, create role duban and the databases
#   stop       fast shutdown
#   status     print whether it runs (exit 0 running, 3 not running)
#   url NAME   print the SQLAlchemy URL of database NAME,
#              e.g. postgresql+psycopg://duban@127.0.0.1:15432/duban_registry
#   psql NAME [ARGS...]   open psql on database NAME as duban
#   reset      stop and delete the cluster (all data)
#
# Environment (defaults in brackets):
#   DUBAN_PG_PORT       TCP port on 127.0.0.1 [15432]
#   DUBAN_PG_DIR        cluster dir: data/, socket/, postgres.log [<repo>/.run/postgres]
#   DUBAN_PG_DATABASES  databases to create [duban_registry duban_progress duban_notifier]
#   DUBAN_PG_BIN        PostgreSQL bin dir [the newest /usr/lib/postgresql/*/bin]
# Several independent clusters can run side by side with their own DUBAN_PG_DIR and port.
#
# Run as root (the usual case here), the server runs as the OS user postgres, which must be able
# to reach DUBAN_PG_DIR. If it cannot (e.g. the repo lives under a home dir of mode 0700), the
# cluster is kept under the postgres user's home instead (<home>/duban/<hash of DUBAN_PG_DIR>)
# and DUBAN_PG_DIR becomes a symlink to it; no permissions of your directories are changed.
# Run as another user, the server runs as that user.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)

PORT=${DUBAN_PG_PORT:-15432}
PGDIR=${DUBAN_PG_DIR:-$REPO_ROOT/.run/postgres}
DATABASES=${DUBAN_PG_DATABASES:-duban_registry duban_progress duban_notifier}
ROLE=duban

NAME=postgres
# shellcheck source=lib/daemon.sh source-path=SCRIPTDIR
source "$SCRIPT_DIR/lib/daemon.sh"   # say, die, show, port_open, lock_dir, ...

[[ $PORT =~ ^[0-9]+$ ]] || die "DUBAN_PG_PORT is not a number: '$PORT'"
case $PGDIR in /*) ;; *) PGDIR="$PWD/$PGDIR" ;; esac
PGDIR=${PGDIR%/}


BIN=
find_bin() {
  if [[ -n ${DUBAN_PG_BIN:-} ]]; then
    [[ -x $DUBAN_PG_BIN/postgres ]] || die "no postgres binary in DUBAN_PG_BIN=$DUBAN_PG_BIN"
    BIN=$DUBAN_PG_BIN
    return 0
  fi
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 3 -path '*/bin/postgres' -type f 2>/dev/null |
      sort -V | tail -n 1)
  [[ -n $d ]] || return 1
  BIN=$(dirname "$d")
}

cmd_install() {
  if find_bin; then
    return 0
  fi
  [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed, and installing it needs root (apt-get install postgresql)"
  command -v apt-get >/dev/null 2>&1 ||
    die "PostgreSQL is not installed and apt-get is missing: install the PostgreSQL server (initdb, pg_ctl, postgres) and set DUBAN_PG_BIN"
  say "installing PostgreSQL from Debian's packages (apt-get) ..."
  # Keep the package scripts from starting the Debian default cluster (port 5432): we run our own.
  # policy-rc.d exit 101 = "action forbidden"; only set up if there is none, removed afterwards.
  local policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from scripts/postgres.sh install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  local out   # apt-get's output is shown only when it fails
  out=$(apt-get update -qq 2>&1) || { printf '%s\n' "$out" >&2; die "apt-get update failed"; }
  out=$(apt-get install -y -qq --no-install-recommends postgresql 2>&1) ||
    { printf '%s\n' "$out" >&2; die "apt-get install postgresql failed"; }
  find_bin || die "apt-get installed postgresql, but no /usr/lib/postgresql/*/bin/postgres was found"
  say "installed PostgreSQL $(pg_version) ($BIN)"
}

pg_version() { "$BIN/postgres" --version | sed -n 's/^postgres (PostgreSQL) \([0-9][0-9.]*\).*/\1/p'; }

# Commands of the server side run as the postgres OS user when we are root. The lock fd is
# closed: the server started by pg_ctl would otherwise hold the lock for as long as it runs.
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@" 9>&-)
  else
    (cd / && "$@" 9>&-)
  fi
}

# The real cluster dir (PGDIR, or where its symlink points); set by resolve_dir.
REAL=
resolve_dir() {
  if [[ -L $PGDIR ]]; then
    REAL=$(readlink -f "$PGDIR")
  else
    REAL=$PGDIR
  fi
  DATA="$REAL/data"
  SOCKET_DIR="$REAL/socket"
  LOG_FILE="$REAL/postgres.log"
}

# Create the cluster dir, owned by the server's user; relocate it if postgres cannot reach it.
prepare_dir() {
  resolve_dir
  if [[ $EUID -ne 0 ]]; then
    mkdir -p "$REAL" "$SOCKET_DIR"
    chmod 700 "$REAL"
    return 0
  fi
  id postgres >/dev/null 2>&1 || die "there is no OS user postgres (is the postgresql package installed?)"
  if [[ ! -d $REAL ]]; then
    mkdir -p "$(dirname "$REAL")"
    if ! runuser -u postgres -- test -x "$(dirname "$REAL")"; then
      local home hash
      home=$(getent passwd postgres | cut -d: -f6)
      hash=$(printf '%s' "$PGDIR" | sha256sum | cut -c1-12)
      mkdir -p "$home/duban/$hash"
      chown postgres:postgres "$home/duban" "$home/duban/$hash"
      ln -sfn "$home/duban/$hash" "$PGDIR"
      say "note: the postgres user cannot reach $(show "$(dirname "$PGDIR")"); the cluster lives in $home/duban/$hash (symlinked from $(show "$PGDIR"))"
      resolve_dir
    fi
  fi
  mkdir -p "$REAL" "$SOCKET_DIR"
  chown postgres:postgres "$REAL" "$SOCKET_DIR"
  chmod 700 "$REAL"
  chmod 755 "$SOCKET_DIR"
  runuser -u postgres -- test -w "$REAL" ||
    die "the postgres user cannot write $REAL; set DUBAN_PG_DIR to a dir it can reach"
}


running() { [[ -f $DATA/postmaster.pid ]] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; }

init_cluster() {
  if [[ -f $DATA/PG_VERSION ]]; then
    local have want
    have=$(cat "$DATA/PG_VERSION")
    want=$(pg_version)
    want=${want%%.*}
    [[ $have == "$want" ]] ||
      die "$(show "$DATA") is a PostgreSQL $have cluster but the binaries are $want; run: scripts/postgres.sh reset"
    return 0
  fi
  say "initdb $(show "$DATA")"
  as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C >"$REAL/initdb.log" 2>&1 ||
    { cat "$REAL/initdb.log" >&2; die "initdb failed"; }
  # trust, but only from this machine: the Unix socket (its own dir) and 127.0.0.1
  cat >"$DATA/pg_hba.conf" <<'EOF'
# written by scripts/postgres.sh: a dev/test cluster, reachable from this machine only
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
  printf "\n# settings of scripts/postgres.sh (rewritten on every start)\ninclude_if_exists = 'duban.conf'\n" \
    >>"$DATA/postgresql.conf"
  [[ $EUID -ne 0 ]] || chown postgres:postgres "$DATA/pg_hba.conf"
}

write_conf() {
  cat >"$DATA/duban.conf.tmp" <<EOF
# written by scripts/postgres.sh on every start; edit the script, not this file
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKET_DIR'
max_connections = 200
# A throwaway dev/test cluster: durability is traded for speed. With these off, a crash of the
# machine (not of PostgreSQL) can lose or corrupt data; never use them for data you keep.
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  [[ $EUID -ne 0 ]] || chown postgres:postgres "$DATA/duban.conf.tmp"
  mv "$DATA/duban.conf.tmp" "$DATA/duban.conf"
}

psql_admin() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres; }

create_role_and_databases() {
  # The app role is a superuser: fine for a dev/test cluster (migrations may create extensions).
  local sql db
  sql="DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN SUPERUSER;
  END IF;
END \$\$;"
  for db in $DATABASES; do
    [[ $db =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad database name '$db' in DUBAN_PG_DATABASES"
    sql+="
SELECT 'CREATE DATABASE $db OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')
\\gexec"
  done
  psql_admin <<<"$sql" || die "could not create role $ROLE and the databases"
}

ready_message() {
  say "$1 on 127.0.0.1:$PORT (PostgreSQL $(pg_version), role $ROLE, databases: $DATABASES; data $(show "$PGDIR")/data, log $(show "$PGDIR")/postgres.log)"
}

cmd_start() {
  cmd_install
  prepare_dir
  lock_dir "$REAL" 120
  if running; then
    ready || die "the cluster of $(show "$PGDIR") runs but does not answer on 127.0.0.1:$PORT (another DUBAN_PG_PORT? see $(show "$PGDIR")/postgres.log)"
    create_role_and_databases
    ready_message "already running"
    return 0
  fi
  port_open "$PORT" && die "127.0.0.1:$PORT is in use by another process (set DUBAN_PG_PORT)"
  init_cluster
  write_conf
  say "starting PostgreSQL ($BIN) ..."
  # -w: pg_ctl waits until the server accepts connections
  if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG_FILE" -w -t 60 start >/dev/null; then
    tail -n 30 "$LOG_FILE" >&2 || true
    die "PostgreSQL did not start (log $(show "$PGDIR")/postgres.log)"
  fi
  local tries=30
  until ready || (( --tries == 0 )); do sleep 1; done
  ready || { tail -n 30 "$LOG_FILE" >&2; die "PostgreSQL started but 127.0.0.1:$PORT does not answer"; }
  create_role_and_databases
  ready_message "ready"
}

cmd_stop() {
  find_bin || { say "not installed"; return 0; }
  resolve_dir
  if [[ ! -d $DATA ]] || ! running; then
    say "not running ($(show "$PGDIR"))"
    return 0
  fi
  lock_dir "$REAL" 120
  as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  say "stopped ($(show "$PGDIR"))"
}

cmd_status() {
  find_bin || { say "not installed"; return 3; }
  resolve_dir
  if [[ -d $DATA ]] && running; then
    if ready; then
      say "running on 127.0.0.1:$PORT (data $(show "$PGDIR")/data, log $(show "$PGDIR")/postgres.log)"
    else
      say "running, but 127.0.0.1:$PORT does not answer (log $(show "$PGDIR")/postgres.log)"
    fi
    return 0
  fi
  say "not running ($(show "$PGDIR"))"
  return 3
}

cmd_reset() {
  cmd_stop
  resolve_dir
  case $PGDIR in
    / | "$REPO_ROOT" | "${HOME:-/}" | "") die "refusing to delete $PGDIR" ;;
  esac
  if [[ $REAL != "$PGDIR" ]]; then
    rm -rf "$REAL"
    rmdir "$(dirname "$REAL")" 2>/dev/null || true
  fi
  rm -rf "$PGDIR"
  say "deleted $(show "$PGDIR")"
}

case ${1:-} in
  install) cmd_install; say "PostgreSQL binaries in $BIN" ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  url)
    [[ $# -eq 2 ]] || die "usage: scripts/postgres.sh url NAME"
    printf 'postgresql+psycopg://%s@127.0.0.1:%s/%s\n' "$ROLE" "$PORT" "$2"
    ;;
  psql)
    [[ $# -ge 2 ]] || die "usage: scripts/postgres.sh psql NAME [PSQL ARGS...]"
    find_bin || die "PostgreSQL is not installed; run: scripts/postgres.sh start"
    db=$2
    shift 2
    exec "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$ROLE" "$db" "$@"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
