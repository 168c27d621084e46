# shellcheck shell=bash
# Shared by the integration tests: each test gets its own Kafka topic, consumer
# group and PostgreSQL database on the local stack (deploy/local), so tests can
# run side by side and leave nothing behind but their topic.
set -euo pipefail

: "${CD_SOURCE_ROOT:?set by meson: the source tree}"
: "${CONVDIAG:?set by meson: the convdiag binary}"
# shellcheck source=../../deploy/local/env.sh
. "$CD_SOURCE_ROOT/deploy/local/env.sh"

T_FAILED=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
  if [[ "$1" != "$2" ]]; then fail "$3: expected '$2', got '$1'"; fi
  ok "$3 = $1"
}

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# The admin connection for creating and dropping the test database.
admin_sql() { PGDATABASE=postgres psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# The superuser, over the local stack's socket, in the test's database.
super_sql() {
  psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$CD_STACK_DIR/pg/socket" -p "$CD_PG_PORT" -U postgres \
    -d "${T_DB:?}" -c "$1"
}

# DROP DATABASE ... WITH (FORCE) cannot end an autovacuum worker that is
# still on the database; it is gone within moments, so try again.
drop_db() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    admin_sql "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" 2>/dev/null && return 0
    sleep 0.5
  done
  admin_sql "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"
}

t_cleanup() {
  local rc=$?
  set +e
  [[ -n "${T_PIDS:-}" ]] && kill -9 $T_PIDS 2>/dev/null
  # A failed test must not leave its toxics to the next one.
  if ((${T_TOX_USED:-0})); then (tox_reset) 2>/dev/null; fi
  for p in ${T_TOX_PROXIES:-}; do (tox_api DELETE "/proxies/$p") 2>/dev/null; done
  if [[ -n "${T_DB:-}" ]]; then drop_db "$T_DB"; fi
  exit "$rc"
}

# t_init NAME PARTITIONS: a fresh topic, group and migrated database.
t_init() {
  local name=$1 partitions=${2:-4}
  pg_isready -q -t 5 || fail "PostgreSQL is not reachable at $PGHOST:$PGPORT (run deploy/local/stack.sh up)"
  T_ID="${name}_$$_$RANDOM"
  T_DB="cdtest_$T_ID"
  T_TOPIC="cdtest-$T_ID"
  trap t_cleanup EXIT
  admin_sql "CREATE DATABASE \"$T_DB\""
  export PGDATABASE="$T_DB"
  export CONVDIAG_KAFKA_TOPIC="$T_TOPIC" CONVDIAG_KAFKA_GROUP_ID="cdtest-$T_ID"
  export CONVDIAG_LOG_LEVEL=${CONVDIAG_LOG_LEVEL:-warn}
  # The outbox is written as in production; only the export tests send it.
  export CONVDIAG_EXPORT_WORKERS=${CONVDIAG_EXPORT_WORKERS:-0}
  # Fixed simulated dates (SIM_START) must not age out of retention.
  export CONVDIAG_EVENTS_RETENTION_DAYS=${CONVDIAG_EVENTS_RETENTION_DAYS:-0}
  "$CD_SOURCE_ROOT/deploy/local/kafka.sh" topic "$T_TOPIC" "$partitions" >/dev/null
  "$CONVDIAG" migrate >/dev/null
  T_WORK=$(mktemp -d)
  echo "test $name: topic $T_TOPIC, database $T_DB"
}

# A fixed start time keeps simulated events identical between the producer and
# the expectation computed from --dry-run.
SIM_START=2026-11-20T08:00:00.000Z

# ---- the ingestion emulator, for the export tests ----------------------

: "${EMULATOR:=}"
EMU_IKEY=5e0b7a1c-4f7d-4c6b-9a51-2f3e8d9c0b14

# emu_start [OPTIONS...]: a convdiag-emulator of the test's own on free
# ports: EMU_URL takes track requests, EMU_CTL the control and the API (which
# stay up while the ingestion port is down); points the exporter at EMU_URL.
emu_start() {
  [[ -x "$EMULATOR" ]] || fail "EMULATOR is not set to the convdiag-emulator binary"
  local log=$T_WORK/emulator.log i
  "$EMULATOR" --listen 127.0.0.1:0 --control-listen 127.0.0.1:0 --ikey "$EMU_IKEY" "$@" \
    2>"$log" &
  EMU_PID=$!
  T_PIDS="${T_PIDS:-} $EMU_PID"
  for i in $(seq 100); do
    # The background job may not have opened the log yet.
    EMU_PORT=$(sed -n 's/.*listening ingestion=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" 2>/dev/null || true)
    [[ -n "$EMU_PORT" ]] && break
    sleep 0.05
  done
  [[ -n "$EMU_PORT" ]] || fail "the emulator did not start: $(cat "$log")"
  EMU_URL=http://127.0.0.1:$EMU_PORT
  EMU_CTL=http://127.0.0.1:$(sed -n 's/.*control=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  export APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$EMU_IKEY;IngestionEndpoint=$EMU_URL/"
}

emu_ctl() { curl -sf -X POST -d "$1" "$EMU_CTL/control" >/dev/null || fail "emulator control $1"; }

# Forgets what the emulator holds and switches every fault off.
emu_reset() {
  curl -sf -X DELETE "$EMU_CTL/api/items" >/dev/null || fail "emulator reset"
  emu_ctl '{"reset":true}'
}

# emu_stat PATH: a number from /api/stats, e.g. emu_stat itemsAccepted, emu_stat responses.503
emu_stat() {
  curl -sf "$EMU_CTL/api/stats" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$1"
}

# Events waiting in the export outbox.
outbox_events() { sql "SELECT coalesce(sum(cardinality(event_ids)), 0) FROM export_outbox"; }

# ---- export tests --------------------------------------------------------
# Recent enough for the service's 48 h window, and in the past.
recent=$(date -u -d '-90 minutes' +%Y-%m-%dT%H:%M:%S.000Z)
fill_seed=100

# fill CONVERSATIONS: stores new conversations and leaves their events in the outbox.
fill() {
  fill_seed=$((fill_seed + 1))
  "$CONVDIAG" simulate --seed "$fill_seed" --start "${FILL_START:-$recent}" --conversations "$1" \
    --progress 0 >/dev/null 2>&1
  CONVDIAG_EXPORT_WORKERS=0 "$CONVDIAG" run --until-caught-up >/dev/null
}

# export_for SECONDS: an exporter that runs that long after its first request
# reached the emulator (so a slow start does not count), then gets SIGTERM and
# must exit 0.
export_for() {
  local before pid
  before=$(emu_stat requests)
  "$CONVDIAG" export --progress 0 2>>"$T_WORK/export.log" >/dev/null &
  pid=$!
  for _ in $(seq 300); do
    (( $(emu_stat requests) > before )) && break
    sleep 0.05
  done
  sleep "$1"
  kill -TERM "$pid"
  wait "$pid" || fail "convdiag export exited $? after SIGTERM"
}

drain() { timeout 60 "$CONVDIAG" export --until-drained --progress 0 2>>"$T_WORK/export.log" >/dev/null ||
  fail "export --until-drained failed or hung"; }

# ---- Toxiproxy, for the fault tests ------------------------------------
# deploy/local/toxiproxy.sh runs one Toxiproxy with two proxies: "postgres"
# in front of PostgreSQL and "kafka" in front of the broker's PROXIED
# listener, which advertises the proxy's port, so that a client bootstrapped
# through TOX_KAFKA_BROKERS reaches the broker only through the proxy. A test
# points convdiag there (PGPORT=$TOX_PG_PORT, CONVDIAG_KAFKA_BROKERS=
# $TOX_KAFKA_BROKERS) and adds toxics. The database and the topic are the
# test's own, but the proxies are shared by every test: a test that adds
# toxics or disables a proxy must not run beside another one (is_parallel
# false in meson.build). Such a test starts with tox_reset; toxics are
# removed and the proxies enabled again when it exits.

TOX_API=http://127.0.0.1:$CD_TOXIPROXY_PORT
TOX_PG_PORT=$CD_PG_PROXY_PORT
TOX_KAFKA_BROKERS=127.0.0.1:$CD_KAFKA_PROXY_PORT

# tox_api METHOD PATH [JSON]: fails the test unless Toxiproxy answers 2xx.
tox_api() {
  local out body=()
  T_TOX_USED=1
  if [[ -n "${3:-}" ]]; then body=(-H 'Content-Type: application/json' -d "$3"); fi
  out=$(curl -sS -m 10 --fail-with-body -X "$1" "${body[@]}" "$TOX_API$2" 2>&1) ||
    fail "toxiproxy $1 $2 ${3:-}: ${out//$'\n'/ } (is the stack up? deploy/local/stack.sh up)"
}

# Every toxic removed, both proxies enabled.
tox_reset() { tox_api POST /reset; }

# tox_add PROXY NAME TYPE STREAM ATTRIBUTES_JSON [TOXICITY]: STREAM is
# upstream (client to server) or downstream; TOXICITY the share of
# connections it applies to (default 1), e.g.
#   tox_add postgres slow latency downstream '{"latency": 500, "jitter": 100}'  # per chunk
#   tox_add postgres blackhole timeout upstream '{"timeout": 0}'  # no data passes, nothing closes
#   tox_add kafka rst reset_peer upstream '{"timeout": 0}'        # RST on the first data
# Toxiproxy ignores unknown attributes (a misspelt one is 0). A timeout toxic
# holds open connections too, and removing it closes the ones it held.
tox_add() {
  tox_api POST "/proxies/$1/toxics" \
    "{\"name\": \"$2\", \"type\": \"$3\", \"stream\": \"$4\", \"toxicity\": ${6:-1}, \"attributes\": $5}"
}

# tox_remove PROXY NAME
tox_remove() { tox_api DELETE "/proxies/$1/toxics/$2"; }

# tox_disable PROXY: its listener closes and its open connections are closed,
# so connecting is refused until tox_enable PROXY.
tox_disable() { tox_api PATCH "/proxies/$1" '{"enabled": false}'; }
tox_enable() { tox_api PATCH "/proxies/$1" '{"enabled": true}'; }

# tox_proxy NAME UPSTREAM: a proxy of the test's own (removed when it exits)
# on a free loopback port, to UPSTREAM (HOST:PORT); sets TOX_LISTEN (HOST:PORT).
tox_proxy() {
  tox_api POST /proxies "{\"name\": \"$1\", \"listen\": \"127.0.0.1:0\", \"upstream\": \"$2\"}"
  T_TOX_PROXIES="${T_TOX_PROXIES:-} $1"
  TOX_LISTEN=$(curl -sf "$TOX_API/proxies/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
  [[ $TOX_LISTEN == 127.0.0.1:[1-9]* ]] || fail "toxiproxy gave proxy $1 no port: '$TOX_LISTEN'"
}

# ---- a `convdiag run` in the background, watched through its probes ----

# run_start NAME [OPTIONS...]: convdiag run with metrics on a free port and
# info logging, its output in $T_WORK/NAME.out and .err; sets RUN_PID and
# RUN_URL (the metrics server's address, ending in /).
run_start() {
  local name=$1 i
  shift
  CONVDIAG_LOG_LEVEL=info CONVDIAG_METRICS_LISTEN=127.0.0.1:0 "$CONVDIAG" run --progress 1 "$@" \
    > "$T_WORK/$name.out" 2> "$T_WORK/$name.err" &
  RUN_PID=$!
  T_PIDS="${T_PIDS:-} $RUN_PID"
  RUN_ERR=$T_WORK/$name.err
  RUN_URL=
  for i in $(seq 100); do
    RUN_URL=$({ grep -o 'metrics and probes on http://[^/]*/' "$RUN_ERR" 2>/dev/null || true; } |
              head -n 1 | sed 's/.* on //')
    [[ -n $RUN_URL ]] && break
    kill -0 "$RUN_PID" 2>/dev/null || fail "convdiag run $name exited: $(tail -5 "$RUN_ERR")"
    sleep 0.1
  done
  [[ -n $RUN_URL ]] || fail "no metrics address logged by $name: $(tail -5 "$RUN_ERR")"
}

# probe PATH: "STATUS BODY" of the running one's /readyz, /healthz, ...
probe() { curl -s -m 5 -o "$T_WORK/probe" -w '%{http_code}' "$RUN_URL$1"; echo " $(cat "$T_WORK/probe")"; }

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds; prints the seconds it took.
wait_for() {
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@"; do
    ((SECONDS - t0 < limit)) ||
      fail "$what: not within $limit s${RUN_ERR:+ (last lines of $(basename "$RUN_ERR"): $(tail -n 3 "$RUN_ERR" | tr '\n' ' '))}"
    sleep 0.2
  done
  echo $((SECONDS - t0))
}

stored_at_least() { [[ $(sql 'SELECT count(*) FROM events') -ge $1 ]]; }
not_ready_for() { [[ $(probe readyz) == "503 "*"\"$1\": {\"up\": false"* ]]; }
ready() { [[ $(probe readyz) == "200 "*'"status": "ready"'* ]]; }

# run_stop: SIGTERM; fails unless it exits 0 within SECONDS (default 15).
run_stop() {
  local limit=${1:-15} t0=$SECONDS rc=0 i
  kill -TERM "$RUN_PID"
  for i in $(seq $((limit * 10))); do
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$RUN_PID" 2>/dev/null && fail "still running $limit s after SIGTERM: $(tail -5 "$RUN_ERR")"
  wait "$RUN_PID" || rc=$?
  T_PIDS=${T_PIDS/ $RUN_PID/}
  assert_eq "$rc" 0 "exit code after SIGTERM"
  RUN_STOP_SECONDS=$((SECONDS - t0))
}

# exactly_once N: every one of the N produced events stored, none twice.
exactly_once() {
  assert_eq "$(sql "SELECT count(*) || ' ' || count(DISTINCT (event_id, event_time)) FROM events")" \
    "$1 $1" "events stored, and distinct"
}

# silent_stop PROXY STREAM DEPENDENCY SEED STORED LIMIT [RUN OPTIONS...]: 20,000
# more events, a run through the proxy, and once it stores, the proxy made
# silent (a timeout toxic on STREAM) until readiness names DEPENDENCY
# (postgres, kafka); SIGTERM must then end the run, exit 0, within LIMIT
# seconds.  The silence lifted, a last run straight to the stack reads what
# was in flight again: STORED + 20,000 events, each once.
silent_stop() {
  local proxy=$1 stream=$2 dep=$3 seed=$4 stored=$5 limit=$6 more=20000
  shift 6
  "$CONVDIAG" simulate --seed "$seed" --start "$SIM_START" --events "$more" --progress 0 >/dev/null
  run_start silent_stop "$@"
  wait_for 60 "the next events stored" stored_at_least $((stored + 1)) >/dev/null
  tox_add "$proxy" silent timeout "$stream" '{"timeout": 0}'
  wait_for 30 "readiness to tell $dep is silent" not_ready_for "$dep" >/dev/null
  run_stop "$limit"
  ok "SIGTERM while $dep is silent: exit 0 after $RUN_STOP_SECONDS s"
  tox_remove "$proxy" silent
  "$CONVDIAG" run --until-caught-up --progress 0 > "$T_WORK/final.out"
  exactly_once $((stored + more))
}
