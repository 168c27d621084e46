#!/usr/bin/env bash
# Kafka behind a fault-injecting proxy (Toxiproxy) during runs of 100,000
# events: added latency, connections reset, and a broker that goes silent.
# The silence shows on /readyz within seconds, SIGTERM during it exits 0
# within shutdown.timeout.ms, and once it clears every event is stored
# exactly once.  A broker that refuses connections for a while is read from
# again within seconds of coming back.  Adds toxics to the shared proxies: runs alone.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init kafka_faults 4
tox_reset

events=${CD_FAULT_EVENTS:-100000}
shutdown_ms=4000
"$CONVDIAG" simulate --seed 41 --start "$SIM_START" --events "$events" --progress 0 >/dev/null
# convdiag reaches the broker only through the proxy (its listener there
# advertises the proxy's address); the test's own tools go straight.
opts=(--brokers "$TOX_KAFKA_BROKERS" --set batch.max.events=500
      --set shutdown.timeout.ms=$shutdown_ms)

# ---- latency, then resets
run_start faults "${opts[@]}"
wait_for 60 "first events stored" stored_at_least 1 >/dev/null
tox_add kafka slow latency downstream '{"latency": 40, "jitter": 20}'
wait_for 90 "events stored through 40 ms of latency" stored_at_least $((events / 4)) >/dev/null
tox_remove kafka slow
ok "stored through added latency"
tox_add kafka reset reset_peer downstream '{"timeout": 0}'
sleep 1.5
tox_remove kafka reset
wait_for 90 "events stored after the resets" stored_at_least $((events / 2)) >/dev/null
ok "connections reset: reconnected and went on"

# ---- silence: readiness tells, and it passes
silent_at=$SECONDS
tox_add kafka silent timeout downstream '{"timeout": 0}'
took=$(wait_for 30 "readiness to tell Kafka is silent" not_ready_for kafka)
((took <= 14)) || fail "silence noticed after $took s"
ok "silent Kafka noticed after $took s: $(probe readyz)"
[[ $(probe healthz) == "200 "* ]] || fail "not alive while Kafka is silent: $(probe healthz)"
sleep 3
tox_remove kafka silent
ok "Kafka silent for $((SECONDS - silent_at)) s"
wait_for 180 "every event stored after the silence" stored_at_least "$events" >/dev/null
wait_for 60 "ready again" ready >/dev/null

# ---- a broker that refuses connections (stopped) for 12 s, twice, while
# events keep coming: consumption resumes within 3 s of it listening again
# (with librdkafka's own reconnect backoff, up to 10 s plus 50% jitter, it
# often took longer; past the session timeout that costs a rebalance)
stored=$events
for round in 1 2; do
  tox_disable kafka
  "$CONVDIAG" simulate --seed $((42 + round)) --start "$SIM_START" --events 1000 --progress 0 >/dev/null
  sleep 12
  t0=$(date +%s%N)
  tox_enable kafka
  wait_for 30 "events stored after the broker listened again" stored_at_least $((stored + 1)) >/dev/null
  ms=$((($(date +%s%N) - t0) / 1000000))
  ((ms <= 3000)) || fail "consumption resumed $ms ms after the broker listened again (round $round)"
  ok "broker refused connections for 12 s: resumed $ms ms after it listened again"
  stored=$((stored + 1000))
  wait_for 30 "the events produced meanwhile stored" stored_at_least "$stored" >/dev/null
done
run_stop 15
exactly_once "$stored"

# ---- SIGTERM while Kafka is silent: exit 0 within shutdown.timeout.ms (the
# batches in flight commit; leaving the group cannot, and is given up)
silent_stop kafka downstream kafka 45 "$stored" $((shutdown_ms / 1000 + 3)) "${opts[@]}"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" 0 "dead letters"
echo "1 passed, 0 failed"
