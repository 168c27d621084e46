#!/usr/bin/env bash
# The exporter with a fault-injecting proxy (Toxiproxy) in front of
# PostgreSQL and of the ingestion service.  PostgreSQL cut off while a
# request is in flight: the service's answer is recorded once PostgreSQL is
# back, and nothing is sent twice.  The ingestion endpoint gone silent while
# `run` streams: requests time out, nothing is lost, consumption goes on, the
# backlog gauge grows, then falls to 0, every event accepted once.  Adds
# toxics to the shared proxies: runs alone.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init export_faults 2
tox_reset
emu_start
export CONVDIAG_EXPORT_POLL_MS=50 CONVDIAG_EXPORT_BATCH_MAX_ITEMS=25 CONVDIAG_LOG_LEVEL=info

# ---- PostgreSQL gone while a request is in flight ---------------------------
fill 6
waiting=$(outbox_events)
emu_ctl '{"delay_ms":2000}'
"$CONVDIAG" export --progress 0 --database-url "port=$TOX_PG_PORT" \
  --set database.connect.timeout.ms=1000 >/dev/null 2>"$T_WORK/cut.err" &
exporter=$!
T_PIDS="$T_PIDS $exporter"
# The emulator counts a request once it has judged it, before holding the answer back.
in_hand() { (( $(emu_stat requests) >= 1 )); }
wait_for 30 "a request in the emulator's hands" in_hand >/dev/null
tox_disable postgres
sleep 3 # the answer comes back meanwhile, and cannot be recorded
tox_enable postgres
emu_ctl '{"delay_ms":0}'
for _ in $(seq 300); do
  (( $(outbox_events) == 0 )) && break
  sleep 0.1
done
kill -TERM "$exporter"
wait "$exporter" || fail "the exporter exited $? after SIGTERM"
grep -q "recording the answer again (the events are not sent again)" "$T_WORK/cut.err" ||
  fail "the recording was not retried: $(grep -i export "$T_WORK/cut.err" | tail -3)"
assert_eq "$(emu_stat itemsAccepted)" "$waiting" "PostgreSQL cut mid-request: every event accepted"
assert_eq "$(emu_stat duplicates)" 0 "PostgreSQL cut mid-request: none sent twice"
assert_eq "$(outbox_events)" 0 "PostgreSQL cut mid-request: the outbox empty"

# ---- the ingestion endpoint silent while `run` streams ------------------------
emu_reset
tox_proxy "ingest_$T_ID" "127.0.0.1:$EMU_PORT"
export APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$EMU_IKEY;IngestionEndpoint=http://$TOX_LISTEN/"
events=30000
start=$(date -u -d '-20 hours' +%Y-%m-%dT%H:%M:%S.000Z)
before=$(sql "SELECT count(*) FROM events")
CONVDIAG_EXPORT_WORKERS=2 CONVDIAG_EXPORT_TIMEOUT_MS=2000 CONVDIAG_EXPORT_BACKOFF_MAX_MS=2000 \
  run_start silent
"$CONVDIAG" simulate --seed 71 --start "$start" --events "$events" --rate 3000 --progress 0 \
  >/dev/null 2>&1 &
sim=$!
T_PIDS="$T_PIDS $sim"
for _ in $(seq 200); do (( $(emu_stat itemsAccepted) > 0 )) && break; sleep 0.1; done
(( $(emu_stat itemsAccepted) > 0 )) || fail "nothing exported before the silence"
gauge() { curl -sf "${RUN_URL}metrics" | sed -n "s/^convdiag_export_backlog_events //p"; }
tox_add "ingest_$T_ID" silent timeout upstream '{"timeout": 0}'
stored_then=$(sql "SELECT count(*) FROM events")
sleep 7
grep -q "export paused: POST http://$TOX_LISTEN/v2.1/track: .*imed out" "$RUN_ERR" ||
  fail "the silence went unnoticed: $(grep export "$RUN_ERR" | tail -3)"
stored_now=$(sql "SELECT count(*) FROM events")
(( stored_now > stored_then )) || fail "consumption stalled while the service was silent ($stored_then, then $stored_now)"
high=$(gauge)
(( high > 0 )) || fail "the backlog gauge did not grow while the service was silent: '$high'"
ok "silent ingestion: requests time out, $((stored_now - stored_then)) events stored meanwhile, backlog gauge at $high"
requests() { curl -sf "${RUN_URL}metrics" | sed -n "s/^convdiag_export_request_seconds_count{code=\"$1\"} //p"; }
unanswered=$(requests none) answered=$(requests 200)
(( ${unanswered:-0} > 0 && ${answered:-0} > 0 )) ||
  fail "the request histogram lacks the answered or the unanswered: 200 '$answered', none '$unanswered'"
# Each unanswered request waited out the 2 s timeout: none below 1 s.
assert_eq "$(curl -sf "${RUN_URL}metrics" | sed -n 's/^convdiag_export_request_seconds_bucket{code="none",le="1"} //p')" 0 \
  "silent ingestion: unanswered requests under 1 s"
ok "the request histogram: $answered answered with 200, $unanswered unanswered"
tox_remove "ingest_$T_ID" silent
wait "$sim" || fail "simulate failed"
drained() { (( $(outbox_events) == 0 )) && [[ $(gauge) == 0 ]]; }
wait_for 120 "the outbox drained and the gauge at 0" drained >/dev/null
run_stop
total=$(( events + before ))
assert_eq "$(sql "SELECT count(*) FROM events")" "$total" "silent ingestion: events stored"
assert_eq "$(emu_stat itemsAccepted)" "$events" "silent ingestion: every event accepted"
assert_eq "$(emu_stat duplicates)" 0 "silent ingestion: none twice"
echo "test export_faults: passed"
