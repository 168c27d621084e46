#!/usr/bin/env bash
# Simulated conversations through the real broker into the real PostgreSQL:
# every event stored exactly as produced, once; a rerun and a replay change
# nothing; SIGTERM finishes cleanly with exit 0.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init pipeline 4

sim=(--seed 42 --start "$SIM_START" --conversations 400)
"$CONVDIAG" simulate "${sim[@]}" --dry-run > "$T_WORK/expected.jsonl" 2>/dev/null
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
expected=$(wc -l < "$T_WORK/expected.jsonl")
[[ $expected -gt 1000 ]] || fail "simulate produced only $expected events"

"$CONVDIAG" run --until-caught-up > "$T_WORK/run1.out"
cat "$T_WORK/run1.out"
grep -q "$expected events stored, 0 duplicates, 0 dead letters" "$T_WORK/run1.out" ||
  fail "first run did not report $expected events stored"

# Row by row: what PostgreSQL holds is what was produced.
sql "COPY (SELECT event_id, to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
              organization_id, live_work_item_id, scenario, status, channel_type,
              coalesce(participant_type, ''), coalesce(user_id::text, ''), coalesce(session_id, ''),
              coalesce(transaction_id, ''), coalesce(traceparent, ''),
              coalesce(duration_ms::text, ''), coalesce(failure_reason, ''),
              coalesce(attributes::text, '')
         FROM events ORDER BY event_id) TO STDOUT" > "$T_WORK/stored.tsv"
python3 - "$T_WORK/expected.jsonl" "$T_WORK/stored.tsv" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    attrs = e.get("attributes")
    rows.append("\t".join([
        e["eventId"], e["timestamp"], e["organizationId"], e["liveWorkItemId"], e["scenario"],
        e["status"], e["channelType"], e.get("participantType") or "", e.get("userId") or "",
        e.get("sessionId") or "", e.get("transactionId") or "", e.get("traceparent") or "",
        str(e["durationMs"]) if "durationMs" in e else "", e.get("failureReason") or "",
        # jsonb's text form: keys sorted by length then bytes, ", " and ": " separators
        "" if attrs is None else "{" + ", ".join(
            json.dumps(k, ensure_ascii=False) + ": " + json.dumps(attrs[k], ensure_ascii=False)
            for k in sorted(attrs, key=lambda k: (len(k.encode()), k.encode()))) + "}",
    ]))
rows.sort()
stored = open(sys.argv[2]).read().splitlines()
if rows != stored:
    missing = sorted(set(rows) - set(stored))[:3]
    extra = sorted(set(stored) - set(rows))[:3]
    sys.exit(f"FAIL: stored rows differ from produced events ({len(stored)} vs {len(rows)})\n"
             f"  expected but not stored: {missing}\n  stored but not expected: {extra}")
print(f"ok: all {len(rows)} stored rows equal the produced events")
PY

# Offsets were committed: a second run reads nothing.
"$CONVDIAG" run --until-caught-up > "$T_WORK/run2.out"
grep -q "0 messages" "$T_WORK/run2.out" || fail "second run re-read messages: $(cat "$T_WORK/run2.out")"
ok "second run read nothing"

# A replay of the same events is absorbed by eventId.
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
"$CONVDIAG" run --until-caught-up > "$T_WORK/run3.out"
grep -q "0 events stored, $expected duplicates" "$T_WORK/run3.out" ||
  fail "replay was not absorbed: $(cat "$T_WORK/run3.out")"
assert_eq "$(sql 'SELECT count(*) FROM events')" "$expected" "events after replay"

# New events first, then a replay, in one run with small batches: once clean
# batches have passed, the store stops looking eventIds up before writing and
# must notice the replay from the primary key instead.
"$CONVDIAG" simulate --seed 44 --start "$SIM_START" --conversations 50 >/dev/null
fresh=$("$CONVDIAG" simulate --seed 44 --start "$SIM_START" --conversations 50 --dry-run 2>/dev/null | wc -l)
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
"$CONVDIAG" run --until-caught-up --set batch.max.events=100 > "$T_WORK/run3b.out"
grep -q "$fresh events stored, $expected duplicates" "$T_WORK/run3b.out" ||
  fail "replay after clean batches: $(cat "$T_WORK/run3b.out")"
expected=$((expected + fresh))
assert_eq "$(sql 'SELECT count(*) FROM events')" "$expected" "events after a replay behind new events"

# SIGTERM: the batch in hand is finished, offsets committed, exit 0.
"$CONVDIAG" simulate --seed 43 --start "$SIM_START" --conversations 2000 >/dev/null
more=$("$CONVDIAG" simulate --seed 43 --start "$SIM_START" --conversations 2000 --dry-run 2>/dev/null | wc -l)
"$CONVDIAG" run --set batch.max.events=200 > "$T_WORK/run4.out" &
pid=$!
T_PIDS=$pid
for _ in $(seq 100); do
  [[ $(sql 'SELECT count(*) FROM events') -gt $expected ]] && break
  sleep 0.1
done
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
T_PIDS=
assert_eq "$rc" 0 "exit code after SIGTERM"
grep -q "^run: stopped" "$T_WORK/run4.out" || fail "no stop summary: $(cat "$T_WORK/run4.out")"
"$CONVDIAG" run --until-caught-up > "$T_WORK/run5.out"
assert_eq "$(sql 'SELECT count(*) FROM events')" "$((expected + more))" "events after SIGTERM and a final run"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" 0 "dead letters"
echo "1 passed, 0 failed"
