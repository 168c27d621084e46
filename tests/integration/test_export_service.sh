#!/usr/bin/env bash
# The exporter against what the real ingestion service answers besides its
# verdict on items: a redirect (followed, kept for its max-age, a loop
# stopped), a 200 whose answer is cut short or is a proxy's page, a wrong
# instrumentation key, throttling shared by every sender of two exporters
# (for a whole request, or for items inside a 206), and an exporter killed
# mid-request whose leased row another takes over.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init export_service 2
emu_start --redirect-listen 127.0.0.1:0
EMU_ALT=http://127.0.0.1:$(sed -n 's/.* redirect=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T_WORK/emulator.log")
export CONVDIAG_EXPORT_POLL_MS=50 CONVDIAG_EXPORT_BATCH_MAX_ITEMS=25

# settled WAITING WHAT: every waiting event accepted once, nothing refused, the outbox empty.
settled() {
  assert_eq "$(emu_stat itemsAccepted)" "$1" "$2: every event accepted"
  assert_eq "$(emu_stat duplicates)" 0 "$2: none twice"
  assert_eq "$(outbox_events)" 0 "$2: the outbox empty"
  assert_eq "$(sql "SELECT count(*) FROM export_failures")" 0 "$2: nothing refused for good"
}

# ---- a redirect: followed with its body, kept for its max-age ----------------
for age in 60 0; do
  emu_reset
  : > "$T_WORK/export.log"
  fill 12
  waiting=$(outbox_events)
  groups=$(sql "SELECT count(*) FROM export_outbox")
  emu_ctl "{\"redirect\":307,\"redirect_max_age\":$age}"
  CONVDIAG_LOG_LEVEL=info drain
  settled "$waiting" "307 with max-age=$age"
  if (( age > 0 )); then
    # Only the first request meets the redirect; the rest go where it pointed.
    assert_eq "$(emu_stat responses.307)" 1 "max-age=$age: redirects met"
    assert_eq "$(grep -c "redirects to $EMU_ALT/v2.1/track" "$T_WORK/export.log")" 1 \
      "max-age=$age: the redirect logged once"
  else
    assert_eq "$(emu_stat responses.307)" "$groups" "max-age=0: every request redirected"
  fi
done

# A redirect to itself: stopped after 10, the events kept, then sent once.
emu_reset
: > "$T_WORK/export.log"
fill 2
waiting=$(outbox_events)
emu_ctl '{"redirect":308,"redirect_to":"self"}'
export_for 1
grep -q "redirected more than 10 times" "$T_WORK/export.log" ||
  fail "a redirect loop, not reported: $(tail -3 "$T_WORK/export.log")"
n=$(emu_stat responses.308)
(( n >= 11 && n % 11 == 0 )) || fail "a redirect loop: $n redirects, expected 11 per try"
assert_eq "$(emu_stat itemsAccepted)" 0 "a redirect loop: nothing accepted"
assert_eq "$(outbox_events)" "$waiting" "a redirect loop: the events kept"
ok "a redirect loop: $((n / 11)) tries of 11 requests, each stopped"
emu_ctl '{"reset":true}'
sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
drain
settled "$waiting" "after the redirect loop"

# ---- a 200 that is not the service's answer: nothing counted as accepted ----
for how in cut html; do
  emu_reset
  : > "$T_WORK/export.log"
  fill 3
  waiting=$(outbox_events)
  emu_ctl "{\"body_fault\":\"$how\"}"
  export_for 1
  assert_eq "$(emu_stat itemsAccepted)" 0 "200 $how: nothing taken by the service"
  assert_eq "$(outbox_events)" "$waiting" "200 $how: every event kept to be sent again"
  grep -q "not taken as accepted" "$T_WORK/export.log" ||
    fail "200 $how: the log does not say why: $(tail -3 "$T_WORK/export.log")"
  emu_ctl '{"reset":true}'
  sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
  drain
  settled "$waiting" "200 $how, then the service's answer"
done

# ---- a wrong key: a configuration error, not refused items -------------------
emu_reset
fill 4
waiting=$(outbox_events)
wrong="InstrumentationKey=9d4c0a11-7e2b-4c3d-8e9f-a0b1c2d3e4f5;IngestionEndpoint=$EMU_URL/"
APPLICATIONINSIGHTS_CONNECTION_STRING=$wrong CONVDIAG_EXPORT_WORKERS=2 CONVDIAG_LOG_LEVEL=info \
  CONVDIAG_METRICS_LISTEN=127.0.0.1:0 "$CONVDIAG" export --progress 0 \
  >/dev/null 2>"$T_WORK/wrong_key.err" &
RUN_PID=$!
RUN_ERR=$T_WORK/wrong_key.err
T_PIDS="$T_PIDS $RUN_PID"
paused() { grep -q "export paused (key): .*Invalid instrumentation key" "$RUN_ERR"; }
wait_for 30 "the exporter to pause on the wrong key" paused >/dev/null
RUN_URL=$(grep -o 'metrics and probes on http://[^/]*/' "$RUN_ERR" | head -n 1 | sed 's/.* on //')
wait_for 10 "readiness to name the key" not_ready_for export >/dev/null
grep -q 'Invalid instrumentation key' "$T_WORK/probe" || fail "/readyz does not say why: $(cat "$T_WORK/probe")"
curl -sf "${RUN_URL}metrics" | grep -x 'convdiag_export_paused 1' >/dev/null || fail "/metrics: convdiag_export_paused is not 1"
sleep 3
requests=$(emu_stat requests)
(( requests <= 2 )) || fail "a wrong key: $requests requests in 3 s, expected one per sender at most"
assert_eq "$(sql "SELECT count(*) FROM export_failures")" 0 "a wrong key: nothing refused for good"
assert_eq "$(outbox_events)" "$waiting" "a wrong key: every event kept"
run_stop
ok "a wrong key: export paused after $requests request(s), /readyz and /metrics say why"
# The key fixed: the other resource was never paused, everything goes.
drain
settled "$waiting" "the key fixed"

# ---- throttling: every sender of every exporter waits ------------------------
emu_reset
fill 20
waiting=$(outbox_events)
emu_ctl '{"request_fault_code":429,"retry_after":2}'
for i in 1 2; do
  CONVDIAG_EXPORT_WORKERS=4 "$CONVDIAG" export --progress 0 >/dev/null 2>>"$T_WORK/throttled.log" &
  eval "ex$i=\$!"
  T_PIDS="$T_PIDS $!"
done
sleep 7
during=$(emu_stat requests)
# 8 senders: at most one request each before the first 429 came back, then one
# probe per 2 s Retry-After; each on its own would have made 8 every 2 s.
(( during >= 2 && during <= 8 + 4 + 1 )) ||
  fail "throttled for 7 s with Retry-After 2 s and 8 senders: $during requests"
ok "throttled for 7 s, 8 senders in two exporters: $during requests reached the service"
emu_ctl '{"reset":true}'
# The throttle by rate, as the service measures it: 100 items/s over 2 s.
emu_ctl '{"throttle_rate":100,"throttle_window":2}'
for _ in $(seq 600); do
  (( $(outbox_events) == 0 )) && break
  sleep 0.1
done
kill -TERM "$ex1" "$ex2"
wait "$ex1" && wait "$ex2" || fail "a throttled exporter did not exit 0"
(( $(emu_stat responses.429) > 0 )) || fail "the throttle by rate never answered 429"
settled "$waiting" "throttled by rate"
ok "throttled by rate: $(emu_stat responses.429) answers of 429 in all"

# ---- items at 429 inside a 206 slow every sender too -----------------------
emu_reset
fill 20
waiting=$(outbox_events)
groups=$(sql "SELECT count(*) FROM export_outbox")
(( groups >= 6 )) || fail "expected several outbox rows, got $groups"
emu_ctl '{"item_fault_code":429,"item_fault_share":0.5}'
CONVDIAG_EXPORT_WORKERS=2 CONVDIAG_EXPORT_THROTTLE_FLOOR_MS=1000 export_for 3
n=$(emu_stat requests)
# 2 senders: one request each before the first 206 came back, then a probe a
# second; a sender that took a 206 for a success would go on to every row.
(( n <= 2 + 3 + 1 )) || fail "items at 429 in a 206: $n requests in 3 s over $groups rows"
assert_eq "$(sql "SELECT count(*) FROM export_pauses WHERE kind = 'throttled'")" 1 \
  "items at 429 in a 206: the resource paused"
ok "items at 429 in a 206: $n requests in 3 s, not one per row ($groups)"
emu_ctl '{"reset":true}'
sql "DELETE FROM export_pauses" >/dev/null
sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
drain
settled "$waiting" "items at 429 in a 206, then the service's answer"

# ---- kill -9 mid-request: the lease runs out, another exporter takes over ----
emu_reset
fill 6
waiting=$(outbox_events)
emu_ctl '{"delay_ms":3000}'
export CONVDIAG_EXPORT_LEASE_MS=3000
"$CONVDIAG" export --progress 0 >/dev/null 2>>"$T_WORK/killed.log" &
victim=$!
T_PIDS="$T_PIDS $victim"
in_flight() { [[ $(sql "SELECT count(*) FROM export_outbox WHERE claimed_by LIKE '%:$victim:%'") -ge 1 ]]; }
wait_for 30 "the first exporter to lease a row" in_flight >/dev/null
sleep 0.5
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
t0=$SECONDS
CONVDIAG_LOG_LEVEL=info timeout 120 "$CONVDIAG" export --until-drained --progress 0 \
  >/dev/null 2>"$T_WORK/taker.log" || fail "the second exporter failed: $(tail -3 "$T_WORK/taker.log")"
grep -q "taken over from .*:$victim:0, whose lease ran out" "$T_WORK/taker.log" ||
  fail "no row taken over: $(tail -5 "$T_WORK/taker.log")"
sleep 3.5 # a request the killed exporter left in flight is answered (and kept) by now
stored=$(emu_stat stored)
dups=$(emu_stat duplicates)
assert_eq "$((stored - dups))" "$waiting" "kill -9 mid-request: every event accepted"
(( dups <= CONVDIAG_EXPORT_BATCH_MAX_ITEMS )) ||
  fail "kill -9 mid-request: $dups duplicates, more than the request in flight"
assert_eq "$(outbox_events)" 0 "kill -9 mid-request: the outbox empty"
ok "kill -9 mid-request: taken over and drained in $((SECONDS - t0)) s; $dups duplicate(s), the request in flight at most"
echo "test export_service: passed"
