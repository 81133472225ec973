#!/usr/bin/env bash
# make demo: replays 2024 on a simulated clock in a few minutes. Starts a stack of its own with
# scripts/up.sh (data in .run/demo-stack, fresh each run; topics with a demo prefix; ports
# 8101-8103, SMTP 1125, SMS 1126), then runs the simulator (python -m scripts.demo): agency
# systems report through the public API, some fall silent, one is blocked, work point 41 falls
# behind, one work point is closed; alerts, escalations, acknowledgements and recoveries follow.
# When the year is over the stack keeps running (the clock stops on 31 December) until Ctrl-C,
# which stops everything this started.
#
# Several plans: DUBAN_PLANS (as scripts/up.sh reads it) imports them all, the simulator plays
# every plan in the registry (agencies shared by plans report on each), and the clock runs to
# the end of the last plan's year (a 2025 plan beside the 2024 one: two years, about 18 minutes).
#
# Environment: DUBAN_DEMO_RATE [60000] simulated seconds per real second (the year takes about
#   9 minutes), DUBAN_DEMO_REGISTRY_PORT [8101], DUBAN_DEMO_PROGRESS_PORT [8102],
#   DUBAN_DEMO_NOTIFIER_PORT [8103], DUBAN_DEMO_SMTP_PORT [1125], DUBAN_DEMO_SMS_PORT [1126].
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"
say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

export DUBAN_RUN_DIR=.run/demo-stack
RUN=$DUBAN_RUN_DIR
export DUBAN_REGISTRY_PORT=${DUBAN_DEMO_REGISTRY_PORT:-8101}
export DUBAN_PROGRESS_PORT=${DUBAN_DEMO_PROGRESS_PORT:-8102}
export DUBAN_NOTIFIER_PORT=${DUBAN_DEMO_NOTIFIER_PORT:-8103}
export DUBAN_SMTP_PORT=${DUBAN_DEMO_SMTP_PORT:-1125}
export DUBAN_SMS_PORT=${DUBAN_DEMO_SMS_PORT:-1126}
# Its own databases, whatever the caller's environment says.
export DUBAN_REGISTRY_DATABASE_URL=sqlite+aiosqlite:///$REPO_ROOT/$RUN/registry.db
export DUBAN_PROGRESS_DATABASE_URL=sqlite+aiosqlite:///$REPO_ROOT/$RUN/progress.db
export DUBAN_NOTIFIER_DATABASE_URL=sqlite+aiosqlite:///$REPO_ROOT/$RUN/notifier.db
unset DUBAN_AUTH_JWKS_URL DUBAN_NOTIFIER_PUBLIC_URL DUBAN_PROGRESS_NOTIFIER_URL DUBAN_SIM_CLOCK_EPOCH

# The clock: 2024-01-02 08:30 in Zhaoqing when the services start, stopping on the evening of
# 31 December of the last plan's year (set below; so the board keeps the year's end instead of
# turning everything overdue).
export DUBAN_SIM_CLOCK_START=2024-01-02T08:30:00+08:00
export DUBAN_SIM_CLOCK_RATE=${DUBAN_DEMO_RATE:-60000}
# Timers are real seconds: at 60000x a working day passes in about 1.5 s.
export DUBAN_PROGRESS_SWEEP_INTERVAL_SECONDS=1
export DUBAN_REGISTRY_OUTBOX_POLL_SECONDS=0.2 DUBAN_PROGRESS_OUTBOX_POLL_SECONDS=0.2
export DUBAN_NOTIFIER_DISPATCH_INTERVAL_SECONDS=0.5 DUBAN_NOTIFIER_ESCALATE_INTERVAL_SECONDS=0.5
export DUBAN_NOTIFIER_ESCALATION_DIR=$REPO_ROOT/data/escalation/demo
export DUBAN_NOTIFIER_PER_RECIPIENT_PER_HOUR=100000 DUBAN_NOTIFIER_PER_RECIPIENT_BURST=1000
export DUBAN_NOTIFIER_ACK_LINK_HOURS=720 # 30 simulated days: links still work after the demo
# Circulars (通报): weekly and monthly on the simulated calendar, mailed to the leaders.
export DUBAN_PROGRESS_CIRCULAR_WEEKLY=true DUBAN_PROGRESS_CIRCULAR_MONTHLY=true
export DUBAN_PROGRESS_CIRCULAR_CHECK_SECONDS=1
export DUBAN_NOTIFIER_CIRCULAR_RECIPIENTS=leaders@zhaoqing.example.cn
# New topics each run: the year starts from nothing.
DUBAN_TOPIC_PREFIX="demo$(date +%s)."
export DUBAN_TOPIC_PREFIX

bash scripts/bootstrap.sh
last_year=2024
IFS=',' read -r -a plan_files <<<"${DUBAN_PLANS:-data/plans/zhaoqing-digital-2024.txt}"
for plan in "${plan_files[@]}"; do
  year=$(.venv/bin/duban-registry parse-plan "$plan" \
    | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["plan"]["year"])') \
    || die "cannot read the plan $plan (DUBAN_PLANS)"
  (( year > last_year )) && last_year=$year
done
export DUBAN_SIM_CLOCK_END=${last_year}-12-31T18:00:00+08:00
broker_was_running=0
bash scripts/kafka.sh status >/dev/null 2>&1 && broker_was_running=1
bash scripts/kafka.sh start
rm -rf "$RUN"
mkdir -p "$RUN/logs"
.venv/bin/python -m scripts.demo.topics --bootstrap "127.0.0.1:${DUBAN_KAFKA_PORT:-19092}" \
  --prefix "$DUBAN_TOPIC_PREFIX" --drop-older demo

up_pid='' sim_pid=''
# shellcheck disable=SC2317  # called from traps
cleanup() {
  trap - EXIT
  # Finish cleaning up whatever comes: a second Ctrl-C, the terminal closing, or whoever read
  # our output (tee) being gone already.
  trap '' INT TERM HUP PIPE
  [[ -z $sim_pid ]] || kill "$sim_pid" 2>/dev/null || true
  if [[ -n $up_pid ]] && kill -0 "$up_pid" 2>/dev/null; then
    kill -TERM "$up_pid" 2>/dev/null || true # up.sh stops the services and sinks it started
    wait "$up_pid" 2>/dev/null || true
  fi
  [[ $broker_was_running == 1 ]] || bash scripts/kafka.sh stop || true
  say "stopped"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP
trap cleanup EXIT

# The broker is up already, so up.sh leaves it running; this script stops it if it started it.
bash scripts/up.sh &
up_pid=$!
for _ in $(seq 1 900); do
  [[ -f $RUN/up.ready ]] && break
  kill -0 "$up_pid" 2>/dev/null || die "the stack did not start; see $RUN/logs/"
  sleep 0.2
done
[[ -f $RUN/up.ready ]] || die "the stack did not start within 3 minutes; see $RUN/logs/"
registry_url='' progress_url='' notifier_url='' sim_clock_epoch=''
# shellcheck disable=SC1091  # written by up.sh
. "$RUN/up.ready"
export DUBAN_SIM_CLOCK_EPOCH=$sim_clock_epoch

say "playing 2024-$last_year at ${DUBAN_SIM_CLOCK_RATE}x: about $(( (last_year - 2023) * 31500000 / ${DUBAN_SIM_CLOCK_RATE%.*} / 60 + 1 )) minutes"
say "watch: http://127.0.0.1:$DUBAN_PROGRESS_PORT/board, mail in $RUN/mail/new/, SMS at http://127.0.0.1:$DUBAN_SMS_PORT/"
.venv/bin/python -m scripts.demo --registry "$registry_url" --progress "$progress_url" \
  --notifier "$notifier_url" --office-client "$RUN/demo/operator.client" &
sim_pid=$!
status=0
wait "$sim_pid" || status=$?
sim_pid=''
[[ $status == 0 ]] || die "the simulator stopped (exit $status)"
say "the year is over; the stack keeps running until Ctrl-C"
wait "$up_pid"
