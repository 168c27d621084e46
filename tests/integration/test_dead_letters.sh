#!/usr/bin/env bash
# convdiag dead-letters: list, show and replay.  Events refused for being
# older than retention, one of them with trace headers, and a message that is
# not JSON are dead-lettered; listed and shown byte for byte; replayed once
# retention allows them: stored as the original messages would have been
# (the header's trace id as operation_Id), replayed twice and still stored
# once, and what is still not an event dead-lettered again.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init dead_letters 1
export CONVDIAG_EVENTS_RETENTION_DAYS=30
dl() { "$CONVDIAG" dead-letters "$@"; }
reason_old='older than the retention period'

# ---- dead letters of three kinds
start=$(date -u -d '-40 days' +%Y-%m-%dT10:00:00.000Z)
"$CONVDIAG" simulate --seed 61 --start "$start" --conversations 2 --dry-run > "$T_WORK/old.jsonl" 2>/dev/null
old_n=$(wc -l < "$T_WORK/old.jsonl")
python3 - "$T_WORK/old.jsonl" > "$T_WORK/old.kv" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["liveWorkItemId"] + "\t" + line.rstrip("\n"))
PY
trace_id=4bf92f3577b34da6a3ce929d0e0e4736
traceparent="00-$trace_id-00f067aa0ba902b7-01"
head -n 1 "$T_WORK/old.kv" | kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -p 0 -K $'\t' \
  -H "traceparent=$traceparent" -H "tracestate=vendor=x1"
tail -n +2 "$T_WORK/old.kv" | kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -p 0 -K $'\t'
printf '{"eventId": \xff' > "$T_WORK/bad.bin"
kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -p 0 -k bad-key "$T_WORK/bad.bin"
"$CONVDIAG" run --until-caught-up > "$T_WORK/run1.out"
assert_eq "$(sql 'SELECT count(*) FROM events')" 0 "events stored past retention"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" "$((old_n + 1))" "dead letters"
first_id=$(sql "SELECT min(id) FROM dead_letters")
bad_id=$(sql "SELECT id FROM dead_letters WHERE message_key = 'bad-key'")
assert_eq "$(sql "SELECT kafka_traceparent || ' ' || kafka_tracestate FROM dead_letters WHERE id = $first_id")" \
  "$traceparent vendor=x1" "trace headers kept with the dead letter"

# ---- list
dl list > "$T_WORK/list.out"
assert_eq "$(tail -n 1 "$T_WORK/list.out")" "($((old_n + 1)) of $((old_n + 1)) dead letters not replayed yet)" "list footer"
assert_eq "$(grep -c "$T_TOPIC/0@" "$T_WORK/list.out")" "$((old_n + 1))" "list lines"
dl list --limit 2 | grep -q "^(2 of $((old_n + 1)) dead letters" || fail "list --limit 2"
dl list --reason "$reason_old" --json > "$T_WORK/list.json"
python3 - "$T_WORK/list.json" "$old_n" "$T_TOPIC" <<'PY' || fail "list --json"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == int(sys.argv[2]), len(rows)
for r in rows:
    assert r["topic"] == sys.argv[3] and r["partition"] == 0 and r["bytes"] > 0, r
    assert "older than the retention period" in r["reason"] and r["replayed_at"] is None, r
    assert "message" not in r and r["key"], r
PY
ok "list --reason --json: $old_n rows"

# ---- show
dl show "$bad_id" --raw > "$T_WORK/bad.out"
cmp -s "$T_WORK/bad.out" "$T_WORK/bad.bin" || fail "show --raw is not the message's bytes"
dl show "$bad_id" > "$T_WORK/show.out"
grep -q '^key          bad-key$' "$T_WORK/show.out" || fail "show: key: $(cat "$T_WORK/show.out")"
grep -qF '{"eventId": \xff' "$T_WORK/show.out" || fail "show: bytes not escaped: $(cat "$T_WORK/show.out")"
dl show "$bad_id" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["message_hex"] == "7b226576656e744964223a20ff" and r["key"] == "bad-key", r' || fail "show --json"
ok "show: raw, text and JSON"

# ---- bad command lines and an unknown id
expect_exit() { # CODE WHAT ARGS...
  local code=$1 what=$2 rc=0
  shift 2
  dl "$@" > /dev/null 2> "$T_WORK/err" || rc=$?
  assert_eq "$rc" "$code" "exit status of $what: $(cat "$T_WORK/err")"
}
expect_exit 2 "replay without a filter" replay
expect_exit 2 "an unknown action" frobnicate
expect_exit 2 "no action" --json
expect_exit 2 "show without an id" show
expect_exit 2 "--raw on list" list --raw
expect_exit 2 "a bad --since" list --since yesterday
expect_exit 1 "an unknown id" show 999999
grep -q "no dead letter with id 999999" "$T_WORK/err" || fail "unknown id: $(cat "$T_WORK/err")"

# ---- replay: a dry run sends nothing
dl replay --reason "$reason_old" --dry-run > "$T_WORK/dry.out"
grep -q "^dead-letters replay: would send $old_n dead letters" "$T_WORK/dry.out" || fail "dry run: $(cat "$T_WORK/dry.out")"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL')" 0 "replayed after a dry run"

# ---- replay with a longer retention: the events are stored as the originals would have been
dl replay --reason "$reason_old" > "$T_WORK/replay1.out"
grep -q "^dead-letters replay: $old_n of $old_n dead letters sent back" "$T_WORK/replay1.out" ||
  fail "replay: $(cat "$T_WORK/replay1.out")"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL')" "$old_n" "marked replayed"
CONVDIAG_EVENTS_RETENTION_DAYS=0 "$CONVDIAG" run --until-caught-up > "$T_WORK/run2.out"
expected_ids=$(python3 -c 'import json, sys; print("\n".join(sorted(json.loads(l)["eventId"] for l in open(sys.argv[1]))))' "$T_WORK/old.jsonl")
assert_eq "$(sql 'SELECT event_id FROM events ORDER BY event_id COLLATE "C"')" "$expected_ids" "replayed events stored"
first_event=$(head -n 1 "$T_WORK/old.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["eventId"])')
assert_eq "$(sql "SELECT operation_id || ' ' || kafka_traceparent FROM events WHERE event_id = '$first_event'")" \
  "$trace_id $traceparent" "the replayed event's operation_Id from its traceparent header"
dl replay --reason "$reason_old" > "$T_WORK/replay2.out"
grep -q "no dead letter matches; nothing sent" "$T_WORK/replay2.out" || fail "second replay: $(cat "$T_WORK/replay2.out")"

# ---- replayed twice (--replayed): stored once
dl replay --reason "$reason_old" --replayed > "$T_WORK/replay3.out"
grep -q "^dead-letters replay: $old_n of $old_n dead letters sent back" "$T_WORK/replay3.out" ||
  fail "replay --replayed: $(cat "$T_WORK/replay3.out")"
CONVDIAG_EVENTS_RETENTION_DAYS=0 "$CONVDIAG" run --until-caught-up > "$T_WORK/run3.out"
grep -q "0 events stored, $old_n duplicates" "$T_WORK/run3.out" || fail "run after a second replay: $(cat "$T_WORK/run3.out")"
assert_eq "$(sql 'SELECT count(*) FROM events')" "$old_n" "events after a second replay"

# ---- what is still not an event comes back as a new dead letter
dl replay --id "$bad_id" > /dev/null
"$CONVDIAG" run --until-caught-up > "$T_WORK/run4.out"
assert_eq "$(sql "SELECT count(*) FROM dead_letters WHERE id > $bad_id AND replayed_at IS NULL
                  AND message_key = 'bad-key' AND payload = (SELECT payload FROM dead_letters WHERE id = $bad_id)")" \
  1 "the replayed bad message dead-lettered again"
dl list > "$T_WORK/list2.out"
assert_eq "$(tail -n 1 "$T_WORK/list2.out")" "(1 of 1 dead letters not replayed yet)" "pending after the replays"
dl list --replayed | grep -c "(replayed " | grep -qx "$((old_n + 1))" || fail "list --replayed marks"
echo "1 passed, 0 failed"
