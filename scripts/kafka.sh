#!/usr/bin/env bash
# A real Apache Kafka 4.x broker for development and tests: one JVM that is broker and KRaft
# controller, on 127.0.0.1 only, built from Maven Central jars (no Docker, no tarball download).
#
# Usage: scripts/kafka.sh COMMAND
#   fetch      download the broker's jars with mvn into .cache/kafka/libs (once; cached)
#   start      fetch if needed, format storage once, start the broker in the background,
#              wait until it answers, create the topics of deploy/kafka/topics.txt
#   stop       SIGTERM, wait up to 30 s, then SIGKILL
#   status     print whether it runs (exit 0 running, 3 not running)
#   reset      stop and delete the state dir (data, logs, cluster id)
#   topics     create missing topics of deploy/kafka/topics.txt (broker must run)
#   describe   kafka-topics --describe of all non-internal topics
#   tool CLASS [ARGS...]   run a Kafka main class with the cached jars, e.g.
#              scripts/kafka.sh tool org.apache.kafka.tools.ConsoleConsumer --bootstrap-server 127.0.0.1:19092 --topic t
#
# Environment (defaults in brackets):
#   DUBAN_KAFKA_PORT            client listener port on 127.0.0.1 [19092]
#   DUBAN_KAFKA_CONTROLLER_PORT KRaft controller port on 127.0.0.1 [19093]
#   DUBAN_KAFKA_DIR             state dir: data, server.log, pid file [<repo>/.run/kafka]
#   DUBAN_KAFKA_HEAP            broker heap options [-Xms256m -Xmx512m]
#   DUBAN_KAFKA_JVM_OPTS        extra JVM options for the broker []
#   DUBAN_KAFKA_START_TIMEOUT   seconds to wait for readiness [90]
#   DUBAN_KAFKA_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL [30]
#   DUBAN_KAFKA_TOPICS          topic list file [<repo>/deploy/kafka/topics.txt]
#   DUBAN_KAFKA_RETENTION_MS    retention.ms of the event topics that name none [604800000]
#                               (the services' inboxes are checked against the same variable)
#   DUBAN_KAFKA_VERSION         Kafka version to fetch [the kafka.version of deploy/kafka/pom.xml]
#   JAVA_HOME                   if set, $JAVA_HOME/bin/java is used instead of java on PATH
# Several independent brokers can run side by side with their own DUBAN_KAFKA_DIR and ports.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
DEPLOY_DIR="$REPO_ROOT/deploy/kafka"
POM="$DEPLOY_DIR/pom.xml"
CACHE_DIR="$REPO_ROOT/.cache/kafka"
LIBS_DIR="$CACHE_DIR/libs"
STAMP="$LIBS_DIR/.duban-fetch-stamp"

PORT=${DUBAN_KAFKA_PORT:-19092}
CONTROLLER_PORT=${DUBAN_KAFKA_CONTROLLER_PORT:-19093}
KDIR=${DUBAN_KAFKA_DIR:-$REPO_ROOT/.run/kafka}
HEAP=${DUBAN_KAFKA_HEAP:--Xms256m -Xmx512m}
JVM_OPTS=${DUBAN_KAFKA_JVM_OPTS:-}
START_TIMEOUT=${DUBAN_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${DUBAN_KAFKA_STOP_TIMEOUT:-30}
TOPICS_FILE=${DUBAN_KAFKA_TOPICS:-$DEPLOY_DIR/topics.txt}
RETENTION_MS=${DUBAN_KAFKA_RETENTION_MS:-604800000}

TOPIC_CMD=org.apache.kafka.tools.TopicCommand
STORAGE_CMD=kafka.tools.StorageTool

NAME=kafka
# shellcheck source=lib/daemon.sh source-path=SCRIPTDIR
source "$SCRIPT_DIR/lib/daemon.sh"   # say, die, show, port_open, live_pid, lock_dir, log_tail, stop_pid

for p in "$PORT" "$CONTROLLER_PORT" "$START_TIMEOUT" "$STOP_TIMEOUT"; do
  [[ $p =~ ^[0-9]+$ ]] || die "not a number: '$p' (check the DUBAN_KAFKA_* variables)"
done
[[ $RETENTION_MS =~ ^(-1|[0-9]+)$ ]] || die "DUBAN_KAFKA_RETENTION_MS: not milliseconds or -1: '$RETENTION_MS'"
[[ $PORT != "$CONTROLLER_PORT" ]] || die "DUBAN_KAFKA_PORT and DUBAN_KAFKA_CONTROLLER_PORT must differ"

# Make KDIR absolute (it may be given relative to the current directory).
case $KDIR in /*) ;; *) KDIR="$PWD/$KDIR" ;; esac
DATA_DIR="$KDIR/data"
PID_FILE="$KDIR/kafka.pid"
LOG_FILE="$KDIR/server.log"
OUT_FILE="$KDIR/kafka.out"
PROPS_FILE="$KDIR/server.properties"
TOPICS_OK="$KDIR/topics.ok"


kafka_version() {
  if [[ -n ${DUBAN_KAFKA_VERSION:-} ]]; then
    printf '%s' "$DUBAN_KAFKA_VERSION"
  else
    sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n 1
  fi
}

JAVA=
need_java() {
  if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA=$(command -v java)
  else
    die "java not found; install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)"
  fi
  local v
  v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n 1)
  [[ -n $v && $v -ge 17 ]] ||
    die "$JAVA is Java ${v:-?}; Kafka 4 needs 17+ (Debian: apt-get install openjdk-17-jre-headless)"
}

stamp_text() {
  printf 'kafka %s pom %s\n' "$(kafka_version)" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

fetched() { [[ -f $STAMP && "$(cat "$STAMP")" == "$(stamp_text)" ]]; }

fetch() {
  local verbose=${1:-}
  if fetched; then
    [[ -z $verbose ]] || say "Kafka $(kafka_version) jars already in $(show "$LIBS_DIR") ($(jar_count) jars)"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found; it downloads the Kafka jars (Debian: apt-get install maven)"
  mkdir -p "$CACHE_DIR"
  # One fetch at a time for every run sharing this cache.
  exec 8>"$CACHE_DIR/.fetch.lock"
  flock 8
  if fetched; then exec 8>&-; return 0; fi
  local version tmp
  version=$(kafka_version)
  [[ -n $version ]] || die "no <kafka.version> in $(show "$POM")"
  tmp="$CACHE_DIR/libs.tmp.$$"
  rm -rf "$tmp"
  say "downloading Apache Kafka $version and its dependencies with mvn (Maven Central) ..."
  # mvn's output (even with -q) is shown only when it fails
  local mvn_out
  if ! mvn_out=$(mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -Dkafka.version="$version" -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1); then
    printf '%s\n' "$mvn_out" >&2
    rm -rf "$tmp"
    die "mvn could not fetch Kafka $version (see the errors above)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "mvn ran but kafka_2.13 is missing in its output"; }
  stamp_text >"$tmp/.duban-fetch-stamp"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  exec 8>&-
  say "fetched Kafka $version: $(jar_count) jars, $(du -sh "$LIBS_DIR" | cut -f1) in $(show "$LIBS_DIR")"
}

jar_count() { find "$LIBS_DIR" -maxdepth 1 -name '*.jar' | wc -l; }

# Run a Kafka command-line tool (a main class) with the cached jars; quick-starting JVM,
# killed after TOOL_TIMEOUT seconds.
TOOL_TIMEOUT=600
run_tool() {
  timeout "$TOOL_TIMEOUT" "$JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$DEPLOY_DIR/tools-log4j2.properties" \
    -cp "$LIBS_DIR/*" "$@"
}


# Prints the broker's pid if the pid file names a live broker of this state dir.
broker_pid() { live_pid "$PID_FILE" "kafka.Kafka $PROPS_FILE"; }

lock_state_dir() { lock_dir "$KDIR" 120; }

topics_hash() { sha256sum "$TOPICS_FILE" | cut -d' ' -f1; }

write_properties() {
  local line data=$DATA_DIR
  data=${data//\\/\\\\}    # java.util.Properties reads backslashes as escapes
  {
    printf '# generated by scripts/kafka.sh from deploy/kafka/server.properties.template; edit the template\n'
    while IFS= read -r line || [[ -n $line ]]; do
      line=${line//@PORT@/"$PORT"}
      line=${line//@CONTROLLER_PORT@/"$CONTROLLER_PORT"}
      line=${line//@DATA_DIR@/"$data"}
      printf '%s\n' "$line"
    done <"$DEPLOY_DIR/server.properties.template"
  } >"$PROPS_FILE.tmp"
  mv "$PROPS_FILE.tmp" "$PROPS_FILE"
}

# KRaft storage is formatted once; a formatted data dir (meta.properties) is kept as it is.
format_storage() {
  [[ -f $DATA_DIR/meta.properties ]] && return 0
  local id
  if [[ -s $KDIR/cluster.id ]]; then
    id=$(cat "$KDIR/cluster.id")
  else
    id=$(run_tool "$STORAGE_CMD" random-uuid)
    printf '%s\n' "$id" >"$KDIR/cluster.id"
  fi
  say "formatting KRaft storage in $(show "$DATA_DIR") (cluster id $id)"
  run_tool "$STORAGE_CMD" format --config "$PROPS_FILE" --cluster-id "$id" --ignore-formatted >/dev/null ||
    die "formatting the storage failed"
}

server_log_tail() { log_tail 40 "$LOG_FILE" "$OUT_FILE"; }

# Wait until the port answers and a metadata request (kafka-topics --list) succeeds;
# sets EXISTING_TOPICS to the topic list.
EXISTING_TOPICS=
wait_ready() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT)) out
  while ! port_open "$PORT"; do
    starting_or_die "$pid" "$deadline" "the broker" \
      "did not open 127.0.0.1:$PORT within ${START_TIMEOUT}s"
    sleep 0.3
  done
  while :; do
    TOOL_TIMEOUT=$((deadline - SECONDS > 10 ? deadline - SECONDS : 10))
    if out=$(run_tool "$TOPIC_CMD" --bootstrap-server "127.0.0.1:$PORT" --list 2>/dev/null); then
      TOOL_TIMEOUT=600
      EXISTING_TOPICS=$out
      return 0
    fi
    starting_or_die "$pid" "$deadline" "the broker" \
      "did not answer a metadata request within ${START_TIMEOUT}s"
    sleep 1
  done
}

# Create the topics of the topic file that are not in $1 (newline-separated existing topics).
# Creations run in parallel JVMs (one topic per kafka-topics call).
ensure_topics() {
  local existing=$1 name partitions rest created=() failed=() pids=() names=() i cfgs
  [[ -f $TOPICS_FILE ]] || die "topic list $(show "$TOPICS_FILE") not found"
  local errdir shown
  errdir=$(mktemp -d)
  shown=$(show "$TOPICS_FILE")
  while read -r name partitions rest; do
    [[ -z $name || $name == \#* ]] && continue
    [[ $partitions =~ ^[0-9]+$ ]] || die "$shown: bad partition count '$partitions' for $name"
    grep -qxF -- "$name" <<<"$existing" && continue
    local args=(--bootstrap-server "127.0.0.1:$PORT" --create --if-not-exists --topic "$name"
                --partitions "$partitions" --replication-factor 1)
    read -r -a cfgs <<<"${rest%%#*}"
    for i in ${cfgs[@]+"${cfgs[@]}"}; do args+=(--config "$i"); done
    # a topic that deletes and names no retention gets DUBAN_KAFKA_RETENTION_MS
    if [[ " ${cfgs[*]-} " != *" retention.ms="* && " ${cfgs[*]-} " != *" cleanup.policy=compact "* ]]; then
      args+=(--config "retention.ms=$RETENTION_MS")
    fi
    run_tool "$TOPIC_CMD" "${args[@]}" </dev/null >/dev/null 2>"$errdir/${#names[@]}" &
    pids+=("$!")
    names+=("$name")
  done <"$TOPICS_FILE"
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
      created+=("${names[$i]}")
    else
      failed+=("${names[$i]}")
      cat "$errdir/$i" >&2
    fi
  done
  rm -rf "$errdir"
  (( ${#failed[@]} == 0 )) || die "could not create topics: ${failed[*]}"
  if (( ${#created[@]} )); then
    say "created topics: ${created[*]}"
  fi
  topics_hash >"$TOPICS_OK"
}

ready_message() {
  say "broker ready on 127.0.0.1:$PORT (pid $1, Kafka $(kafka_version), data $(show "$DATA_DIR"), log $(show "$LOG_FILE"))"
}

cmd_start() {
  need_java
  fetch
  lock_state_dir
  local pid
  if pid=$(broker_pid); then
    if port_open "$PORT"; then
      if [[ ! -f $TOPICS_OK || "$(cat "$TOPICS_OK")" != "$(topics_hash)" ]]; then
        wait_ready "$pid"
        ensure_topics "$EXISTING_TOPICS"
      fi
      say "already running (pid $pid) on 127.0.0.1:$PORT (data $(show "$DATA_DIR"), log $(show "$LOG_FILE"))"
      return 0
    fi
    say "pid $pid is starting; waiting for it"
  else
    rm -f "$PID_FILE"
    port_open "$PORT" && die "127.0.0.1:$PORT is in use by another process (set DUBAN_KAFKA_PORT)"
    port_open "$CONTROLLER_PORT" &&
      die "127.0.0.1:$CONTROLLER_PORT is in use by another process (set DUBAN_KAFKA_CONTROLLER_PORT)"
    mkdir -p "$DATA_DIR"
    write_properties
    format_storage
    rm -f "$TOPICS_OK"
    local heap=() extra=()
    read -r -a heap <<<"$HEAP"
    read -r -a extra <<<"$JVM_OPTS"
    # setsid: the broker gets a session of its own and outlives the calling shell/terminal.
    # The inner shell writes its own pid, then execs java (same pid).
    (
      cd "$KDIR"
      exec 8>&- 9>&-    # do not hand the lock files to the broker
      # shellcheck disable=SC2016  # $$ and $0 belong to the inner shell
      exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
        "$JAVA" "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -Djava.awt.headless=true -Dkafka.logs.dir="$KDIR" \
        -Dlog4j2.configurationFile="$DEPLOY_DIR/log4j2.properties" \
        ${extra[@]+"${extra[@]}"} \
        -cp "$LIBS_DIR/*" kafka.Kafka "$PROPS_FILE" </dev/null >"$OUT_FILE" 2>&1
    ) &
    local i
    for i in $(seq 50); do [[ -s $PID_FILE ]] && break; sleep 0.1; done
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ -n $pid ]] || { server_log_tail; die "the broker did not start"; }
    say "started broker pid $pid (127.0.0.1:$PORT, controller 127.0.0.1:$CONTROLLER_PORT); waiting for it"
  fi
  wait_ready "$pid"
  ensure_topics "$EXISTING_TOPICS"
  ready_message "$pid"
}

cmd_stop() {
  lock_state_dir
  local pid
  if ! pid=$(broker_pid); then
    rm -f "$PID_FILE"
    say "not running ($(show "$KDIR"))"
    return 0
  fi
  stop_pid "$pid" "$STOP_TIMEOUT"
  rm -f "$PID_FILE"
  say "stopped broker pid $pid ($(show "$KDIR"))"
}

cmd_status() {
  local pid
  if pid=$(broker_pid); then
    if port_open "$PORT"; then
      say "running (pid $pid) on 127.0.0.1:$PORT (data $(show "$DATA_DIR"), log $(show "$LOG_FILE"))"
    else
      say "running (pid $pid) but 127.0.0.1:$PORT does not answer yet (log $(show "$LOG_FILE"))"
    fi
    return 0
  fi
  say "not running ($(show "$KDIR"))"
  return 3
}

cmd_reset() {
  cmd_stop
  case $KDIR in
    / | "$REPO_ROOT" | "$HOME" | "") die "refusing to delete $KDIR" ;;
  esac
  rm -rf "$KDIR"
  say "deleted $(show "$KDIR")"
}

need_running() {
  need_java
  fetched || die "jars not fetched; run: scripts/kafka.sh start"
  broker_pid >/dev/null || die "the broker of $(show "$KDIR") is not running; run: scripts/kafka.sh start"
}

case ${1:-} in
  fetch) need_java; fetch verbose ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  topics)
    need_running
    lock_state_dir
    ensure_topics "$(run_tool "$TOPIC_CMD" --bootstrap-server "127.0.0.1:$PORT" --list)"
    say "topics of $(show "$TOPICS_FILE") exist"
    ;;
  describe)
    need_running
    run_tool "$TOPIC_CMD" --bootstrap-server "127.0.0.1:$PORT" --describe --exclude-internal
    ;;
  tool)
    shift
    [[ $# -ge 1 ]] || die "usage: scripts/kafka.sh tool MAIN_CLASS [ARGS...]"
    need_java
    fetch
    run_tool "$@"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
