#!/usr/bin/env bash
# Runs Duban on this machine with the embedded defaults: SQLite databases under .run/, a local
# Kafka broker, the Jaeger trace backend (scripts/jaeger.sh), an SMTP sink that keeps every
# message (Maildir .run/mail), the three services, and the plans of DUBAN_PLANS imported (by
# default the Digital Zhaoqing 2024 plan).
# Ctrl-C stops everything it started.
# A second run reuses the caches and the data in .run/ (make clean wipes the data).
#
# Environment: DUBAN_PLANS [data/plans/zhaoqing-digital-2024.txt] the plan files to import,
#   separated by commas (each plan's slug is its file name without extension; agencies named
#   in several plans are one agency), DUBAN_CONFIRM_PLAN=1 applies a changed plan text;
#   DUBAN_RUN_DIR [.run] (data,
#   logs, sinks; scripts/demo.sh uses .run/demo-stack), DUBAN_SMS_PORT [1026] (the SMS sink),
#   DUBAN_SIM_CLOCK_START/_RATE/_END (a simulated clock; its epoch is the services' start),
#   DUBAN_REGISTRY_PORT [8001],
#   DUBAN_PROGRESS_PORT [8002], DUBAN_NOTIFIER_PORT [8003], DUBAN_SMTP_PORT [1025], DUBAN_PROGRESS_SWEEP_INTERVAL_SECONDS [60], OTEL_* (traces go to
#   Jaeger over OTLP unless OTEL_TRACES_EXPORTER or an OTLP endpoint is set; with DUBAN_JAEGER=0
#   Jaeger is not started and traces are not exported unless OTEL_TRACES_EXPORTER says so).
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"
RUN=${DUBAN_RUN_DIR:-.run}
IFS=',' read -r -a PLAN_FILES <<<"${DUBAN_PLANS:-data/plans/zhaoqing-digital-2024.txt}"
PLAN_SLUGS=()
for plan in "${PLAN_FILES[@]}"; do
  [[ -f $plan ]] || { printf 'up: no plan file %s (DUBAN_PLANS)\n' "$plan" >&2; exit 1; }
  name=$(basename -- "$plan")
  PLAN_SLUGS+=("${name%.*}")
done
REGISTRY_PORT=${DUBAN_REGISTRY_PORT:-8001}
PROGRESS_PORT=${DUBAN_PROGRESS_PORT:-8002}
NOTIFIER_PORT=${DUBAN_NOTIFIER_PORT:-8003}
SMTP_PORT=${DUBAN_SMTP_PORT:-1025}
SMS_PORT=${DUBAN_SMS_PORT:-1026}
SMS_TOKEN=local-sms-sink # the sink listens on 127.0.0.1 only
DEMO_AGENCY=市林业局
DEMO_MAIL=linye@zhaoqing.example.cn

say() { printf 'up: %s\n' "$*"; }
die() { printf 'up: %s\n' "$*" >&2; exit 1; }

bash scripts/bootstrap.sh
broker_was_running=0
bash scripts/kafka.sh status >/dev/null 2>&1 && broker_was_running=1
bash scripts/kafka.sh start
# The trace backend; the services export to it unless OTEL_TRACES_EXPORTER or an OTLP endpoint
# is set already. DUBAN_JAEGER=0 skips it.
jaeger_was_running=1
if [[ ${DUBAN_JAEGER:-1} == 0 ]]; then
  say "Jaeger skipped (DUBAN_JAEGER=0)"
  jaeger_line="Jaeger    skipped (DUBAN_JAEGER=0)"
else
  bash scripts/jaeger.sh status >/dev/null 2>&1 || jaeger_was_running=0
  bash scripts/jaeger.sh start
  jaeger_query="http://127.0.0.1:${DUBAN_JAEGER_UI_PORT:-16686}"
  export OTEL_TRACES_EXPORTER=${OTEL_TRACES_EXPORTER:-otlp}
  if [[ -z ${OTEL_EXPORTER_OTLP_ENDPOINT:-}${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-} ]]; then
    export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:${DUBAN_JAEGER_OTLP_HTTP_PORT:-14318}"
  fi
  jaeger_line="Jaeger    $jaeger_query/api/traces?service=duban-progress&limit=20 (query API; no UI in this build: an alert's trace is shown on the board, /board/traces/<trace id>)"
fi
mkdir -p "$RUN/logs" "$RUN/demo" "$RUN/mail/tmp" "$RUN/mail/new" "$RUN/mail/cur" "$RUN/sms"
rm -f "$RUN/up.ready"

export PATH="$REPO_ROOT/.venv/bin:$PATH"
# The services reach the broker this script started (DUBAN_KAFKA_PORT moves both).
export DUBAN_KAFKA_BOOTSTRAP_SERVERS=${DUBAN_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${DUBAN_KAFKA_PORT:-19092}}
export DUBAN_REGISTRY_DATABASE_URL=${DUBAN_REGISTRY_DATABASE_URL:-sqlite+aiosqlite:///$REPO_ROOT/$RUN/registry.db}
export DUBAN_PROGRESS_DATABASE_URL=${DUBAN_PROGRESS_DATABASE_URL:-sqlite+aiosqlite:///$REPO_ROOT/$RUN/progress.db}
export DUBAN_NOTIFIER_DATABASE_URL=${DUBAN_NOTIFIER_DATABASE_URL:-sqlite+aiosqlite:///$REPO_ROOT/$RUN/notifier.db}
export DUBAN_NOTIFIER_SMTP_HOST=127.0.0.1 DUBAN_NOTIFIER_SMTP_PORT=$SMTP_PORT
export DUBAN_AUTH_JWKS_URL=${DUBAN_AUTH_JWKS_URL:-http://127.0.0.1:$REGISTRY_PORT/.well-known/jwks.json}
export OTEL_TRACES_EXPORTER=${OTEL_TRACES_EXPORTER:-none}
export OTEL_METRICS_EXPORTER=${OTEL_METRICS_EXPORTER:-none}  # GET /metrics on each port still works
export DUBAN_LOG_FORMAT=${DUBAN_LOG_FORMAT:-text}
# The supervision board (progress, /board) reads alerts from the notifier and links them to traces.
export DUBAN_PROGRESS_NOTIFIER_URL=${DUBAN_PROGRESS_NOTIFIER_URL:-http://127.0.0.1:$NOTIFIER_PORT}
if [[ -n ${jaeger_query:-} ]]; then
  # This Jaeger has no web UI: the board shows traces itself, read from Jaeger's query API.
  export DUBAN_PROGRESS_TRACE_QUERY_URL=${DUBAN_PROGRESS_TRACE_QUERY_URL:-$jaeger_query}
fi
export DUBAN_CALENDAR_DIR=${DUBAN_CALENDAR_DIR:-$REPO_ROOT/data/calendar}
export DUBAN_NOTIFIER_ESCALATION_DIR=${DUBAN_NOTIFIER_ESCALATION_DIR:-$REPO_ROOT/data/escalation}
export DUBAN_NOTIFIER_PUBLIC_URL=${DUBAN_NOTIFIER_PUBLIC_URL:-http://127.0.0.1:$NOTIFIER_PORT}
export DUBAN_PROGRESS_NOTIFIER_URL=${DUBAN_PROGRESS_NOTIFIER_URL:-http://127.0.0.1:$NOTIFIER_PORT}
# The sms channel: the generic HTTP gateway, played by the SMS sink.
export DUBAN_NOTIFIER_CHANNELS__HTTP_SMS__URL=${DUBAN_NOTIFIER_CHANNELS__HTTP_SMS__URL:-http://127.0.0.1:$SMS_PORT/v1/sms}
export DUBAN_NOTIFIER_CHANNELS__HTTP_SMS__TOKEN=${DUBAN_NOTIFIER_CHANNELS__HTTP_SMS__TOKEN:-$SMS_TOKEN}
# A simulated clock (scripts/demo.sh) starts when the services do; the commands before them
# (imports, migrations) need a valid setting too.
sim_epoch_given=${DUBAN_SIM_CLOCK_EPOCH:+1}
start_sim_clock() {
  if [[ -n ${DUBAN_SIM_CLOCK_START:-} && -z $sim_epoch_given ]]; then
    DUBAN_SIM_CLOCK_EPOCH=$(date +%s.%N)
    export DUBAN_SIM_CLOCK_EPOCH
  fi
}
start_sim_clock

pids=()
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  # Finish cleaning up whatever comes: a second Ctrl-C, the terminal closing, or whoever read
  # our output (tee) being gone already.
  trap '' INT TERM HUP PIPE
  say "stopping services"
  rm -f "$RUN/up.ready"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Stop the broker only if this run started it (tests or another stack may be using it).
  [[ $broker_was_running == 1 ]] || bash scripts/kafka.sh stop || true
  [[ $jaeger_was_running == 1 ]] || bash scripts/jaeger.sh stop || true
  say "stopped"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$REGISTRY_PORT" "$PROGRESS_PORT" "$NOTIFIER_PORT" "$SMTP_PORT" "$SMS_PORT"; do
  port_free "$port" || die "port $port on 127.0.0.1 is in use (another 'make up'?); stop it or set DUBAN_*_PORT"
done

wait_http() { # name url
  for _ in $(seq 1 150); do
    curl -fsS "$2" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "$1 did not answer at $2; see $RUN/logs/$1.log"
}

start() { # name command...
  local name=$1; shift
  "$@" >"$RUN/logs/$name.log" 2>&1 &
  pids+=($!)
}

say "SMTP sink on 127.0.0.1:$SMTP_PORT (Maildir $RUN/mail)"
start smtp python -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$RUN/mail"
say "SMS sink on http://127.0.0.1:$SMS_PORT/ (messages in $RUN/sms)"
start sms duban-notifier sms-sink --port "$SMS_PORT" --dir "$RUN/sms" --token "$SMS_TOKEN"

# Every plan of DUBAN_PLANS. A plan text changed since the last run is shown as a diff and
# applied only when confirmed.
for plan in "${PLAN_FILES[@]}"; do
  status=0
  duban-registry import-plan "$plan" ${DUBAN_CONFIRM_PLAN:+--confirm} | sed 's/^/up: import: /' || status=$?
  if [[ $status == 3 ]]; then
    die "$plan changed since it was imported (diff above); apply it with: DUBAN_CONFIRM_PLAN=1 make up"
  elif [[ $status != 0 ]]; then
    die "importing $plan failed (exit $status)"
  fi
done
duban-registry load-aliases data/agencies/zhaoqing-aliases.toml 2>&1 | grep -v 'database at head' | sed 's/^/up: /'
# Snapshots again, so services upgraded since the last run learn the fields they now read.
duban-registry republish 2>&1 | grep -v 'database at head' | sed 's/^/up: /'
duban-progress migrate | sed 's/^/up: /'
duban-notifier migrate | sed 's/^/up: /'
# The demo agency's address, before the notifier runs: the plan's first alerts reach it.
demo_agency_id=$(python -c "import sys; from registry.domain.agency_identity import agency_id_for; print(agency_id_for(sys.argv[1]))" "$DEMO_AGENCY")
duban-notifier set-email --agency-id "$demo_agency_id" --email "$DEMO_MAIL" | grep -v 'database at head' | sed 's/^/up: /'

start_sim_clock # again: simulated time starts now
start registry duban-registry serve --port "$REGISTRY_PORT"
start progress duban-progress serve --port "$PROGRESS_PORT"
start notifier duban-notifier serve --port "$NOTIFIER_PORT"
wait_http registry "http://127.0.0.1:$REGISTRY_PORT/healthz"
wait_http progress "http://127.0.0.1:$PROGRESS_PORT/healthz"
wait_http notifier "http://127.0.0.1:$NOTIFIER_PORT/healthz"

# Demo API clients of the registry (OAuth2 client credentials), made once and kept in .run/demo:
# the agency system of the forestry bureau, and an operator of the coordinating office.
# shellcheck disable=SC1090  # a client file is KEY=value lines written by create-client
client_field() { ( . "$1" && printf '%s' "${!2}" ) } # file name
token_for() { # client file -> access token from the registry (secret via stdin, not argv)
  printf 'user = "%s:%s"\n' "$(client_field "$1" client_id)" "$(client_field "$1" client_secret)" \
    | curl -fsS -K - -d grant_type=client_credentials "http://127.0.0.1:$REGISTRY_PORT/oauth/token" \
    | python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
ensure_client() { # file create-client arguments...
  local file=$1; shift
  if [[ -s $file ]] && token_for "$file" >/dev/null 2>&1; then return 0; fi
  (umask 077 && duban-registry create-client "$@" > "$file.new" 2>>"$RUN/logs/clients.log")
  mv "$file.new" "$file"
  say "new API client in $file ($(client_field "$file" client_id))"
}
rm -f "$RUN/demo/forestry.key" # the API key of earlier versions
ensure_client "$RUN/demo/forestry.client" --role agency --agency-name "$DEMO_AGENCY" --label "demo agency system"
ensure_client "$RUN/demo/operator.client" --role operator --label "make up operator"
agency_id=$(client_field "$RUN/demo/forestry.client" agency_id)
# Demo personal accounts for the board (local-only defaults, documented in README: never use
# them on a shared machine): the office's and one of the demo agency's staff.
DEMO_PASSWORD=duban-local-pass
ensure_account() { # username create-account arguments...
  local username=$1; shift
  duban-registry list-accounts 2>/dev/null | cut -f1 | grep -qx "$username" && return 0
  printf '%s\n' "$DEMO_PASSWORD" \
    | duban-registry create-account --username "$username" --password-stdin "$@" \
      >>"$RUN/logs/clients.log" 2>&1 || die "could not create the account $username; see $RUN/logs/clients.log"
  say "new personal account $username (password $DEMO_PASSWORD, local only)"
}
ensure_account office --name 督办办公室 --role coordinator
ensure_account linye --name 林业局填报员 --role agency --agency-name "$DEMO_AGENCY"
operator_token=$(token_for "$RUN/demo/operator.client")
contact_set=0
for _ in $(seq 1 150); do # the notifier learns the agencies from Kafka first
  if curl -fsS -X PUT "http://127.0.0.1:$NOTIFIER_PORT/v1/agencies/$agency_id/contacts/email" \
    -H "Authorization: Bearer $operator_token" \
    -H 'Content-Type: application/json' -d "{\"addresses\": [\"$DEMO_MAIL\"]}" >/dev/null 2>&1; then
    contact_set=1 && break
  fi
  sleep 0.2
done
[[ $contact_set == 1 ]] || die "the notifier did not accept the demo contact; see $RUN/logs/notifier.log"
for slug in "${PLAN_SLUGS[@]}"; do # progress learns each plan's work points from Kafka
  for _ in $(seq 1 150); do
    curl -fsS -H "Authorization: Bearer $operator_token" \
      "http://127.0.0.1:$PROGRESS_PORT/v1/plans/$slug/summary" >/dev/null 2>&1 && break
    sleep 0.2
  done
done

clock_line=''
[[ -z ${DUBAN_SIM_CLOCK_START:-} ]] || clock_line="
  clock     simulated: $DUBAN_SIM_CLOCK_START at ${DUBAN_SIM_CLOCK_RATE:-1}x since the services started"
cat <<MSG

Duban is running (Ctrl-C stops it):
  registry  http://127.0.0.1:$REGISTRY_PORT/docs   work points: /v1/plans/<plan>/work-points
            plans: ${PLAN_SLUGS[*]}
            tokens: POST /oauth/token (client credentials), keys: /.well-known/jwks.json
  progress  http://127.0.0.1:$PROGRESS_PORT/docs   agency reports: POST /v1/events
  notifier  http://127.0.0.1:$NOTIFIER_PORT/docs   contacts and notification log (office tokens)
  Kafka     127.0.0.1:${DUBAN_KAFKA_PORT:-19092}
  $jaeger_line
  board     http://127.0.0.1:$PROGRESS_PORT/board
  SMTP sink 127.0.0.1:$SMTP_PORT, every message kept in $RUN/mail/new/
  SMS sink  http://127.0.0.1:$SMS_PORT/ (every message kept in $RUN/sms/)
  logs      $RUN/logs/$clock_line
Demo agency $DEMO_AGENCY ($agency_id): API client in $RUN/demo/forestry.client, mail to $DEMO_MAIL
Operator API client (contacts, notification log): $RUN/demo/operator.client
Supervision board (督办看板): http://127.0.0.1:$PROGRESS_PORT/board
  log in as office (the office: everything) or linye ($DEMO_AGENCY: its own work points),
  password $DEMO_PASSWORD (local-only defaults; API clients' secrets are for machines only)

MSG
# For scripts that run on this stack (scripts/demo.sh): where it is and its clock.
cat >"$RUN/up.ready" <<READY
registry_url=http://127.0.0.1:$REGISTRY_PORT
progress_url=http://127.0.0.1:$PROGRESS_PORT
notifier_url=http://127.0.0.1:$NOTIFIER_PORT
sim_clock_epoch=${DUBAN_SIM_CLOCK_EPOCH:-}
READY

# Exit (and clean up) as soon as any process dies.
set +e
wait -n "${pids[@]}"
status=$?
say "a process exited ($status); see $RUN/logs/"
exit "$status"
