#!/usr/bin/env bash
# PostgreSQL behind a fault-injecting proxy (Toxiproxy) during runs of
# 100,000 events: added latency, connections reset, and a peer that goes
# silent (the proxy keeps the connections open and passes nothing).  The
# silence is noticed within the configured time (statement timeout plus
# grace) and /readyz says so, the group membership holds through it, SIGTERM
# during it exits 0 within shutdown.timeout.ms, and once it clears every
# event is stored exactly once.  Adds toxics to the shared proxies: runs alone.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init pg_faults 4
tox_reset

events=${CD_FAULT_EVENTS:-100000}
statement_ms=2000
grace_ms=5000 # CD_PG_ANSWER_GRACE_MS
shutdown_ms=4000
"$CONVDIAG" simulate --seed 31 --start "$SIM_START" --events "$events" --progress 0 >/dev/null
# convdiag through the proxy (the test's own queries go straight), with
# bounds short enough for a test.
opts=(--database-url "port=$TOX_PG_PORT" --set batch.max.events=500
      --set database.statement.timeout.ms=$statement_ms
      --set database.connect.timeout.ms=2000 --set shutdown.timeout.ms=$shutdown_ms)

# ---- latency, then resets, while events stream in
run_start faults "${opts[@]}"
wait_for 30 "first events stored" stored_at_least 1 >/dev/null
tox_add postgres slow latency downstream '{"latency": 40, "jitter": 20}'
tox_add postgres slow_up latency upstream '{"latency": 20, "jitter": 10}'
wait_for 60 "events stored through 40 ms of latency" stored_at_least $((events / 5)) >/dev/null
tox_remove postgres slow
tox_remove postgres slow_up
ok "stored through added latency"
# Every connection reset at its next byte, for a moment.
tox_add postgres reset reset_peer upstream '{"timeout": 0}'
sleep 1.5
tox_remove postgres reset
grep -q "PostgreSQL unavailable" "$RUN_ERR" || fail "the resets went unnoticed: $(tail -3 "$RUN_ERR")"
wait_for 60 "events stored after the resets" stored_at_least $((events * 2 / 5)) >/dev/null
ok "connections reset: reconnected and went on"

# ---- silence
silent_at=$SECONDS
tox_add postgres silent timeout upstream '{"timeout": 0}'
took=$(wait_for 30 "readiness to tell PostgreSQL is silent" not_ready_for postgres)
limit=$(((statement_ms + grace_ms) / 1000 + 3))
((took <= limit)) || fail "silence noticed after $took s, over $limit s"
ok "silent PostgreSQL noticed after $took s (statement timeout $((statement_ms / 1000)) s + grace $((grace_ms / 1000)) s): $(probe readyz)"
[[ $(probe healthz) == "200 "* ]] || fail "not alive while PostgreSQL is silent: $(probe healthz)"
# Longer than the session timeout would allow a member that stopped polling.
sleep $((12 - (SECONDS - silent_at) > 0 ? 12 - (SECONDS - silent_at) : 0))
stored_silent=$(sql 'SELECT count(*) FROM events')
tox_remove postgres silent
ok "PostgreSQL silent for $((SECONDS - silent_at)) s, $stored_silent events stored by then"
wait_for 120 "every event stored after the silence" stored_at_least "$events" >/dev/null
wait_for 30 "ready again" ready >/dev/null
revoked=$(grep -c 'revoked' "$RUN_ERR" || true)
assert_eq "$revoked" 0 "partitions revoked during the run (the membership held)"
run_stop 15
exactly_once "$events"

# ---- SIGTERM while PostgreSQL is silent: exit 0 within shutdown.timeout.ms
silent_stop postgres upstream postgres 32 "$events" $((shutdown_ms / 1000 + 3)) "${opts[@]}"
grep -q "shutdown deadline reached" "$RUN_ERR" ||
  fail "no batch was abandoned at the deadline: $(tail -5 "$RUN_ERR")"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" 0 "dead letters"
echo "1 passed, 0 failed"
