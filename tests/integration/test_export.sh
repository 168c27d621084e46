#!/usr/bin/env bash
# Export to the ingestion emulator: every stored event accepted exactly once
# and as the timeline shows it, then the response policy against each of the
# emulator's fault switches, a malformed connection string, events too old
# for the service, and two exporters sharing the outbox.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init export 2
emu_start
export CONVDIAG_EXPORT_POLL_MS=50

# ---- every event, once, as the timeline shows it --------------------------
"$CONVDIAG" simulate --seed 1 --start "$recent" --conversations 60 --progress 0 >/dev/null 2>&1
CONVDIAG_EXPORT_WORKERS=2 "$CONVDIAG" run --until-caught-up > "$T_WORK/run.out" 2>>"$T_WORK/export.log"
stored=$(sql "SELECT count(*) FROM events")
assert_eq "$(emu_stat itemsAccepted)" "$stored" "items accepted by the emulator after run --until-caught-up"
assert_eq "$(emu_stat duplicates)" 0 "duplicates"
assert_eq "$(outbox_events)" 0 "events left in the outbox"
assert_eq "$(sql "SELECT count(*) FROM export_failures")" 0 "export failures"
grep -q "^export: $stored items accepted" "$T_WORK/run.out" || fail "run's summary: $(cat "$T_WORK/run.out")"

# The exporter (C) and conversation_timeline (SQL) are two implementations of
# the brief's export format: for a few conversations they must agree, column by column.
for lwi in $(sql "SELECT live_work_item_id FROM conversations ORDER BY live_work_item_id LIMIT 5"); do
  curl -sf "$EMU_CTL/api/traces?conversation=$lwi" > "$T_WORK/traces.json"
  psql -X -A -t -q -c "SELECT coalesce(json_agg(t), '[]') FROM conversation_timeline('$lwi') AS t" \
    > "$T_WORK/timeline.json"
  python3 - "$T_WORK/traces.json" "$T_WORK/timeline.json" "$lwi" <<'PY'
import json, sys
from datetime import datetime
traces = json.load(open(sys.argv[1]))
traces = traces["traces"] if isinstance(traces, dict) else traces
timeline = json.load(open(sys.argv[2]))
def key(r):
    return (datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")), r["message"],
            r["operation_Name"], r["operation_Id"], r["operation_ParentId"],
            r["session_Id"] or "", r["user_Id"], int(r["severityLevel"]), r["itemType"],
            json.dumps(r["customDimensions"], sort_keys=True))
a = sorted(map(key, traces)); b = sorted(map(key, timeline))
if a != b:
    for x, y in zip(a, b):
        if x != y:
            print("emulator:", x, "\ntimeline:", y, file=sys.stderr); break
    sys.exit(f"conversation {sys.argv[3]}: {len(a)} traces in the emulator, {len(b)} in the timeline, not the same")
print(f"ok: conversation {sys.argv[3]}: {len(a)} traces, as conversation_timeline shows them")
PY
done

# ---- whole-request failures: kept, retried after Retry-After -------------
for code in 408 429 439 500 502 503 504; do
  emu_reset
  fill 3
  waiting=$(outbox_events)
  emu_ctl "{\"request_fault_code\":$code,\"request_fault_share\":1,\"retry_after\":3}"
  export_for 1.5
  # Retry-After: 3 s, so one request in 1.5 s; a tight loop would make many.
  assert_eq "$(emu_stat requests)" 1 "HTTP $code: requests in 1.5 s with Retry-After: 3"
  assert_eq "$(emu_stat itemsAccepted)" 0 "HTTP $code: items accepted"
  assert_eq "$(outbox_events)" "$waiting" "HTTP $code: events kept in the outbox"
  # The row sent waits out Retry-After, with the reason; the worker waits too,
  # so a second row (when the events took two batches) is not tried yet.
  # Throttling is the resource's: every sender waits, through export_pauses.
  if [[ $code == 429 || $code == 439 ]]; then
    assert_eq "$(sql "SELECT count(*) FROM export_outbox WHERE attempts = 1 AND last_error LIKE 'HTTP $code %'")" \
      1 "HTTP $code: the row sent keeps the reason"
    assert_eq "$(sql "SELECT count(*) FROM export_pauses WHERE kind = 'throttled' AND reason LIKE 'HTTP $code %' AND paused_until BETWEEN since + interval '2.9 s' AND since + interval '4 s'")" \
      1 "HTTP $code: every sender paused for the Retry-After of 3 s, with the reason"
  else
    assert_eq "$(sql "SELECT count(*) FROM export_outbox WHERE attempts = 1 AND last_error LIKE 'HTTP $code %' AND next_attempt_at >= created_at + interval '3 s'")" \
      1 "HTTP $code: the row sent waits out Retry-After with the reason"
  fi
  assert_eq "$(sql "SELECT count(*) FROM export_outbox WHERE attempts > 1")" 0 "HTTP $code: no row tried twice"
  assert_eq "$(sql "SELECT count(*) FROM export_failures")" 0 "HTTP $code: nothing refused for good"
  emu_ctl '{"reset":true}'
  sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
  sql "DELETE FROM export_pauses" >/dev/null
  drain
  assert_eq "$(emu_stat itemsAccepted)" "$waiting" "HTTP $code: accepted once the service is back"
  assert_eq "$(emu_stat duplicates)" 0 "HTTP $code: duplicates"
done

# Retry-After as an HTTP-date, and no Retry-After at all (the back-off alone).
emu_reset
fill 2
emu_ctl '{"request_fault_code":503,"request_fault_share":1,"retry_after":4,"retry_after_format":"date"}'
export_for 1.5
assert_eq "$(emu_stat requests)" 1 "503 with an HTTP-date Retry-After: requests in 1.5 s"
# An HTTP-date has whole seconds: 4 s from the answer is at least 3 s from it.
assert_eq "$(sql "SELECT count(*) FROM export_outbox WHERE next_attempt_at < created_at + interval '3 s'")" 0 \
  "rows wait for the HTTP-date"
emu_ctl '{"retry_after":0}'
sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
curl -sf -X DELETE "$EMU_CTL/api/items" >/dev/null
export_for 2.5
n=$(emu_stat requests)
# Back-off from 500 ms, doubling, jittered into [d/2, d]: after the first try,
# 2 to 4 more in 2.5 s (on a loaded machine maybe only 1); a tight loop would make hundreds.
if (( n < 2 || n > 6 )); then fail "503 without Retry-After: $n requests in 2.5 s, expected 2 to 6"; fi
ok "503 without Retry-After: $n requests in 2.5 s (exponential back-off)"
emu_ctl '{"reset":true}'
sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
drain
assert_eq "$(outbox_events)" 0 "outbox drained after the 503s"

# ---- 400 and 402: refused for good, recorded, never retried --------------
for code in 400 402; do
  emu_reset
  sql "TRUNCATE export_failures" >/dev/null
  fill 2
  waiting=$(outbox_events)
  groups=$(sql "SELECT count(*) FROM export_outbox")
  # A 400 is what the service answers when it refuses every item of a request.
  if [[ $code == 400 ]]; then
    emu_ctl '{"item_fault_code":400,"item_fault_share":1}'
  else
    emu_ctl "{\"request_fault_code\":$code,\"request_fault_share\":1}"
  fi
  drain
  assert_eq "$(emu_stat responses.$code)" "$groups" "HTTP $code: answered $code"
  assert_eq "$(emu_stat requests)" "$groups" "HTTP $code: one request per outbox row, no retry"
  assert_eq "$(sql "SELECT count(*) FROM export_failures WHERE status_code = $code AND reason <> ''")" \
    "$waiting" "HTTP $code: every event recorded in export_failures with the reason"
  assert_eq "$(outbox_events)" 0 "HTTP $code: outbox empty"
done

# ---- 206: per-item resend, per-item refusal --------------------------------
emu_reset
sql "TRUNCATE export_failures" >/dev/null
fill 20
waiting=$(outbox_events)
emu_ctl '{"item_fault_code":503,"item_fault_share":0.4}'
export_for 1
first=$(emu_stat itemsAccepted)
left=$(outbox_events)
(( first > 0 && left > 0 )) || fail "206 with 503 items: accepted $first, left $left"
assert_eq "$((first + left))" "$waiting" "206: accepted plus kept for resend"
ok "206 with per-item 503: $first accepted at once, $left kept for resend"
emu_ctl '{"reset":true}'
sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
drain
assert_eq "$(emu_stat itemsAccepted)" "$waiting" "206: every item accepted in the end"
assert_eq "$(emu_stat duplicates)" 0 "206: only the refused items were resent"

emu_reset
fill 20
waiting=$(outbox_events)
emu_ctl '{"item_fault_code":400,"item_fault_share":0.3}'
drain
accepted=$(emu_stat itemsAccepted)
refused=$(sql "SELECT count(*) FROM export_failures WHERE status_code = 400")
(( refused > 0 )) || fail "206 with per-item 400: nothing refused"
assert_eq "$((accepted + refused))" "$waiting" "206 with per-item 400: accepted plus refused for good"
assert_eq "$(emu_stat itemsReceived)" "$waiting" "206 with per-item 400: refused items not resent"

# ---- no answer: connection refused, then a timeout -------------------------
emu_reset
sql "TRUNCATE export_failures" >/dev/null
fill 5
waiting=$(outbox_events)
emu_ctl '{"down_for":3}'
sleep 0.3
timeout 60 "$CONVDIAG" export --until-drained --progress 0 2>"$T_WORK/refused.log" >/dev/null ||
  fail "export across a closed port: $(tail -3 "$T_WORK/refused.log")"
grep -q "export paused: POST $EMU_URL/v2.1/track: .*onnect" "$T_WORK/refused.log" ||
  fail "no connection-refused warning: $(cat "$T_WORK/refused.log")"
assert_eq "$(emu_stat itemsAccepted)" "$waiting" "connection refused: accepted once the port is open"
assert_eq "$(emu_stat duplicates)" 0 "connection refused: duplicates"

emu_reset
fill 3
waiting=$(outbox_events)
emu_ctl '{"delay_ms":2500,"delay_share":1}'
CONVDIAG_EXPORT_TIMEOUT_MS=800 export_for 1.5
grep -q "export paused: POST $EMU_URL/v2.1/track: .*imed out" "$T_WORK/export.log" ||
  fail "no timeout warning: $(tail -5 "$T_WORK/export.log")"
assert_eq "$(outbox_events)" "$waiting" "timeout: events kept"
emu_ctl '{"reset":true}'
sql "UPDATE export_outbox SET next_attempt_at = now()" >/dev/null
drain
sleep 2.6 # the delayed request, if the emulator still took it, is counted by now
accepted=$(sql "SELECT count(*) FROM events")
ok "timeout: $(emu_stat stored) items stored by the emulator, $(emu_stat duplicates) of them twice (a request that timed out may still have been taken: at least once)"
(( $(emu_stat stored) - $(emu_stat duplicates) == waiting )) || fail "timeout: not every event accepted"

# ---- events past the service's 48 h window: refused before sending --------
emu_reset
sql "TRUNCATE export_failures" >/dev/null
FILL_START=$(date -u -d '-3 days' +%Y-%m-%dT%H:%M:%S.000Z) fill 2
waiting=$(outbox_events)
drain
assert_eq "$(emu_stat requests)" 0 "too old: nothing sent"
assert_eq "$(sql "SELECT count(*) FROM export_failures WHERE status_code IS NULL AND reason LIKE '%more than 48 h ago%'")" \
  "$waiting" "too old: every event recorded as refused"

# ---- two exporters share the outbox ----------------------------------------
emu_reset
CONVDIAG_EXPORT_BATCH_MAX_ITEMS=25 fill 40
waiting=$(outbox_events)
groups=$(sql "SELECT count(*) FROM export_outbox")
(( groups >= 10 )) || fail "expected many outbox rows, got $groups"
emu_ctl '{"delay_ms":20,"delay_share":1}'
drain &
p1=$!
drain &
p2=$!
wait "$p1" && wait "$p2" || fail "an exporter failed"
assert_eq "$(emu_stat itemsAccepted)" "$waiting" "two exporters: every event accepted"
assert_eq "$(emu_stat duplicates)" 0 "two exporters: none twice"
assert_eq "$(emu_stat requests)" "$groups" "two exporters: one request per row"

# ---- a malformed connection string; the key never in a log ---------------
set +e
APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=not-a-guid-secret;IngestionEndpoint=ftp://x" \
  "$CONVDIAG" export --until-drained 2>"$T_WORK/bad.log"
rc=$?
set -e
assert_eq "$rc" 2 "malformed connection string: exit code"
grep -q "APPLICATIONINSIGHTS_CONNECTION_STRING" "$T_WORK/bad.log" || fail "the error does not name the setting: $(cat "$T_WORK/bad.log")"
if grep -q "not-a-guid-secret" "$T_WORK/bad.log"; then fail "the error quotes the key"; fi
ok "malformed connection string: $(head -1 "$T_WORK/bad.log")"
if grep -qi -e "$EMU_IKEY" -e "${EMU_IKEY//-/}" "$T_WORK/export.log" "$T_WORK/refused.log"; then
  fail "the instrumentation key appears in a log"
fi
ok "the instrumentation key appears in no log"
echo "test export: passed"
