#!/usr/bin/env bash
# Application Insights down for a while during a 100,000-event run: Kafka
# consumption goes on, the outbox grows, and once the service is back every
# event is accepted exactly once.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init export_outage 4
emu_start
export CONVDIAG_EXPORT_WORKERS=2 CONVDIAG_EXPORT_BACKOFF_MAX_MS=2000

EVENTS=${CD_OUTAGE_EVENTS:-100000}
start=$(date -u -d '-20 hours' +%Y-%m-%dT%H:%M:%S.000Z)
"$CONVDIAG" simulate --seed 77 --start "$start" --events "$EVENTS" --rate 25000 --progress 0 \
  >/dev/null 2>&1 &
sim_pid=$!
T_PIDS="$T_PIDS $sim_pid"

"$CONVDIAG" run --progress 1 >"$T_WORK/run.out" 2>"$T_WORK/run.log" &
run_pid=$!
T_PIDS="$T_PIDS $run_pid"

# Let export get going, then close the port for 8 s while events keep coming.
for _ in $(seq 200); do (( $(emu_stat itemsAccepted) > 0 )) && break; sleep 0.1; done
(( $(emu_stat itemsAccepted) > 0 )) || fail "nothing exported before the outage"
emu_ctl '{"down_for":8}'
down_at=$(sql "SELECT count(*) FROM events")
accepted_at_down=$(emu_stat itemsAccepted)
sleep 4
during=$(sql "SELECT count(*) FROM events")
(( during > down_at )) || fail "consumption stalled while the service was down ($down_at then $during stored)"
ok "consumption went on during the outage: $down_at then $during events stored"
backlog=$(outbox_events)
(( backlog > 0 )) || fail "the outbox did not grow during the outage"
ok "outbox held $backlog events during the outage"

wait "$sim_pid" || fail "simulate failed"
# Every event stored and then accepted; generous deadline for a loaded machine.
for _ in $(seq 600); do
  (( $(emu_stat itemsAccepted) >= EVENTS )) && break
  sleep 0.5
done
kill -TERM "$run_pid"
wait "$run_pid" || fail "run exited $? after SIGTERM: $(tail -5 "$T_WORK/run.log")"

stored=$(sql "SELECT count(*) FROM events")
assert_eq "$stored" "$EVENTS" "events stored"
assert_eq "$(emu_stat itemsAccepted)" "$EVENTS" "items accepted"
assert_eq "$(emu_stat duplicates)" 0 "items accepted twice"
assert_eq "$(outbox_events)" 0 "events left in the outbox"
assert_eq "$(sql "SELECT count(*) FROM export_failures")" 0 "events refused for good"
grep -q "export paused: POST .*onnect" "$T_WORK/run.log" || fail "no warning about the outage in the log"
n_warn=$(grep -c "export paused" "$T_WORK/run.log")
ok "$n_warn 'export paused' warnings during an 8 s outage with 2 workers (no tight retry loop)"
(( n_warn < 40 )) || fail "too many retries during the outage: $n_warn"
echo "accepted before the outage: $accepted_at_down"
echo "test export_outage: passed"
