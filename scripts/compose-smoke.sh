#!/usr/bin/env bash
# The compose smoke: the whole stack of docker-compose.yml in containers, on a Docker engine of
# this machine (deploy/compose.local.yml: host networking, local images, 127.0.0.1 only), then
# the end-to-end path against it, then `down`, leaving no container, volume or process behind.
#   1. a Docker engine (scripts/docker.sh start: a reachable one, else a daemon of our own);
#   2. Compose built from its Go module (scripts/gobuild.sh compose, cached in .cache/bin);
#   3. the images (scripts/images.sh build; cached by the engine after the first time);
#   4. `compose up --wait`: migrate jobs done, topics created, plan imported, services healthy;
#   5. end to end: an operator and an agency API client (duban-registry create-client in the
#      registry container) and their tokens; the agency's mail contact; a blocked report on work
#      point 35; the stall mail in Mailpit (its API); one trace in Jaeger from the report's
#      POST through progress to the notifier's SMTP send;
#   6. `compose down --volumes`; the daemon is stopped if this script started it.
# Skipped, with the reason printed and exit 0, when DUBAN_TEST_COMPOSE=0 or when no engine can be
# had (no docker command, not root and none reachable). DUBAN_COMPOSE_KEEP=1 leaves the stack up.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"
NAME=compose-smoke
# shellcheck source=lib/daemon.sh source-path=SCRIPTDIR
source scripts/lib/daemon.sh   # say, die, show
started=$SECONDS

skip() { say "skipped: $*"; exit 0; }
[[ ${DUBAN_TEST_COMPOSE:-1} != 0 ]] || skip "DUBAN_TEST_COMPOSE=0"
command -v docker >/dev/null 2>&1 || skip "no docker command on this machine"
if ! bash scripts/docker.sh status >/dev/null 2>&1 && [[ $EUID -ne 0 && -z ${DOCKER_HOST:-} ]]; then
  skip "no Docker engine answers, and starting one needs root"
fi

daemon_was_running=1
bash scripts/docker.sh status >/dev/null 2>&1 || daemon_was_running=0
bash scripts/docker.sh start
DOCKER_HOST=$(bash scripts/docker.sh host)
export DOCKER_HOST

COMPOSE_BIN=$(bash scripts/gobuild.sh compose)
PROJECT=duban-smoke
compose() {
  "$COMPOSE_BIN" --project-name "$PROJECT" --project-directory "$REPO_ROOT" \
    -f docker-compose.yml -f deploy/compose.local.yml "$@"
}

REGISTRY=http://127.0.0.1:38001
PROGRESS=http://127.0.0.1:38002
NOTIFIER=http://127.0.0.1:38003
MAILPIT=http://127.0.0.1:38025
JAEGER=http://127.0.0.1:36686
PLAN=zhaoqing-digital-2024
AGENCY=市林业局
MAIL=linye@zhaoqing.example.cn

# shellcheck disable=SC2317  # called from the trap
finish() {
  local status=$?
  trap - EXIT
  if [[ $status != 0 ]]; then
    say "FAILED; the last lines of each container's log:"
    compose ps -a >&2 || true
    compose logs --no-color --tail 25 >&2 || true
  fi
  if [[ ${DUBAN_COMPOSE_KEEP:-0} == 1 ]]; then
    say "left the stack up (DUBAN_COMPOSE_KEEP=1); stop it with: $(show "$COMPOSE_BIN") -p $PROJECT -f docker-compose.yml -f deploy/compose.local.yml down --volumes"
  else
    compose down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || status=1
    local left
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
    left=$((left + $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)))
    if [[ $left != 0 ]]; then
      say "down left $left container(s) or volume(s) of $PROJECT behind"
      status=1
    else
      say "down: no container or volume of $PROJECT left"
    fi
    [[ $daemon_was_running == 1 ]] || bash scripts/docker.sh stop
  fi
  say "finished in $((SECONDS - started))s (exit $status)"
  exit "$status"
}
trap finish EXIT

bash scripts/images.sh build
t_up=$SECONDS
say "compose up (project $PROJECT) ..."
compose down --volumes --remove-orphans >/dev/null 2>&1 || true   # a stack left by a killed run
# --wait on the long-running services (their dependencies: topics job and migrations exited 0);
# the plan import is a one-shot nothing depends on, so it is waited for by its exit code.
compose up --detach --wait --wait-timeout 300 registry progress progress-worker notifier
compose up --detach registry-import
import_exit=$(docker wait "$(compose ps --all --quiet registry-import)")
[[ $import_exit == 0 ]] || die "registry-import exited with $import_exit"
say "stack healthy in $((SECONDS - t_up))s: migrations done, topics created, plan imported"
compose ps --all --format 'table {{.Service}}\t{{.Status}}'

# --------------------------------------------------------------- end to end
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
field() { sed -n "s/^$2=//p" <<<"$1" | head -n 1; }
token() { # client_id client_secret
  curl -fsS -u "$1:$2" -d grant_type=client_credentials "$REGISTRY/oauth/token" | json 'd["access_token"]'
}
# wait_until SECONDS WHAT COMMAND...: retry COMMAND (quietly) until it succeeds
wait_until() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || die "timed out after ${limit}s waiting for $what"
    sleep 1
  done
}

operator=$(compose exec -T registry duban-registry create-client --role operator --label "compose smoke")
agency=$(compose exec -T registry duban-registry create-client --role agency --agency-name "$AGENCY" --label "compose smoke")
operator_token=$(token "$(field "$operator" client_id)" "$(field "$operator" client_secret)")
agency_token=$(token "$(field "$agency" client_id)" "$(field "$agency" client_secret)")
agency_id=$(field "$agency" agency_id)
say "API clients made; tokens issued (agency $AGENCY, $agency_id)"

set_contact() {
  curl -fsS -X PUT "$NOTIFIER/v1/agencies/$agency_id/contacts/email" \
    -H "Authorization: Bearer $operator_token" -H 'Content-Type: application/json' \
    -d "{\"addresses\": [\"$MAIL\"]}"
}
wait_until 120 "the notifier to learn $AGENCY from Kafka" set_contact
plan_known() { curl -fsS -H "Authorization: Bearer $operator_token" "$PROGRESS/v1/plans/$PLAN/summary"; }
wait_until 120 "progress to learn the plan's work points from Kafka" plan_known

event_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
now=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
answer=$(curl -sS -w '\n%{http_code}' -X POST "$PROGRESS/v1/events" \
  -H "Authorization: Bearer $agency_token" -H 'Content-Type: application/json' \
  -d "{\"event_id\": \"$event_id\", \"work_point_id\": \"$PLAN/35\", \"status\": \"blocked\",
       \"percent\": 40, \"note\": \"林分优化用地审批未完成\", \"occurred_at\": \"$now\"}")
[[ ${answer##*$'\n'} == 202 ]] || die "POST /v1/events answered ${answer##*$'\n'}, not 202: ${answer%$'\n'*}"
say "blocked report on work point 35 accepted (event $event_id)"

mail_arrived() {
  curl -fsS "$MAILPIT/api/v1/search?query=to:$MAIL" |
    json '[m for m in d["messages"] if "第三十五项" in m["Subject"]][0]["Subject"]'
}
wait_until 120 "the stall mail to $MAIL in Mailpit" mail_arrived
say "mail in Mailpit: $(mail_arrived)"

# One trace: the report's POST (progress) ... the SMTP send (notifier), parent to child.
one_trace() {
  curl -fsS "$JAEGER/api/traces?service=notifier&operation=email%20send&limit=20&lookback=1h" | python3 -c '
import json, sys
for trace in json.load(sys.stdin)["data"]:
    services = {p["serviceName"] for p in trace["processes"].values()}
    names = {s["operationName"] for s in trace["spans"]}
    if {"progress", "notifier"} <= services and {"POST /v1/events", "email send"} <= names:
        print(trace["traceID"], len(trace["spans"]), "spans,", ", ".join(sorted(services)))
        sys.exit(0)
sys.exit(1)'
}
wait_until 120 "one trace from POST /v1/events to the SMTP send in Jaeger" one_trace
say "trace in Jaeger: $(one_trace)"
say "end-to-end path passed against the containers"
