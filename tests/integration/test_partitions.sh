#!/usr/bin/env bash
# events partitioned by UTC day: partitions ahead of time after migrate, on
# demand for late and early events, a conversation across midnight, replays,
# retention dropping exactly the old days, events older than retention or
# further ahead than events.future.max.days dead-lettered, and a database
# that already holds events migrated without losing a row.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init partitions 2
# The defaults, said here so that this test means the same whatever lib.sh sets;
# events up to 14 days ahead taken, so that days past those made ahead of time
# (7) get theirs on demand.
export CONVDIAG_EVENTS_RETENTION_DAYS=30 CONVDIAG_EVENTS_PARTITION_AHEAD_DAYS=7 \
  CONVDIAG_EVENTS_FUTURE_MAX_DAYS=14

day() { date -u -d "$today $1 days" +%Y-%m-%d; }
part() { echo "events_${1//-/}"; }
partitions() {
  sql "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'events'::regclass ORDER BY 1" | tr '\n' ' '
}
today=$(date -u +%Y-%m-%d)

# ---- migrate: yesterday to today + 7 (events.partition.ahead.days), commented, no DEFAULT
"$CONVDIAG" migrate > /dev/null
expected=""
for d in -1 0 1 2 3 4 5 6 7; do expected+="$(part "$(day "$d")") "; done
assert_eq "$(partitions)" "$expected" "partitions after migrate"
assert_eq "$(sql "SELECT count(*) FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
                  WHERE i.inhparent = 'events'::regclass AND obj_description(c.oid, 'pg_class') IS NULL")" \
  0 "partitions without a comment"
assert_eq "$(sql "SELECT partdefid FROM pg_partitioned_table WHERE partrelid = 'events'::regclass")" 0 \
  "DEFAULT partition"
"$CONVDIAG" migrate > "$T_WORK/migrate.out"
grep -q "partitions of events: 0 created, 0 dropped" "$T_WORK/migrate.out" ||
  fail "second migrate: $(cat "$T_WORK/migrate.out")"
ok "migrate again creates nothing"

# ---- events 40 days ago, across last midnight, today, 10 days ahead: all stored
# Stored while nothing is dropped (events.retention.days = 0); retention comes later.
declare -A start=(
  [old]="$(day -40)T10:00:00.000Z"
  [midnight]="$(day -1)T23:59:00.000Z"
  [today]="${today}T00:30:00.000Z"
  [ahead]="$(day 10)T10:00:00.000Z"
)
declare -A seed=([old]=41 [midnight]=42 [today]=43 [ahead]=44)
total=0
for g in old midnight today ahead; do
  sim=(--seed "${seed[$g]}" --start "${start[$g]}" --conversations 3)
  "$CONVDIAG" simulate "${sim[@]}" --dry-run > "$T_WORK/$g.jsonl" 2>/dev/null
  "$CONVDIAG" simulate "${sim[@]}" >/dev/null
  total=$((total + $(wc -l < "$T_WORK/$g.jsonl")))
done
CONVDIAG_EVENTS_RETENTION_DAYS=0 "$CONVDIAG" run --until-caught-up --log-level info \
  > "$T_WORK/run1.out" 2> "$T_WORK/run1.err"
assert_eq "$(sql 'SELECT count(*) FROM events')" "$total" "events stored"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" 0 "dead letters"
for d in -40 10; do
  grep -q "created partition $(part "$(day "$d")") for an event of that day" "$T_WORK/run1.err" ||
    fail "partition of $(day "$d") not created on demand: $(cat "$T_WORK/run1.err")"
done
ok "partitions of $(day -40) and $(day 10) created on demand"
# Every event in the partition of its own UTC day.
assert_eq "$(sql "SELECT count(*) FROM events
                  WHERE tableoid::regclass::text <> 'events_' || to_char(event_time AT TIME ZONE 'UTC', 'YYYYMMDD')")" \
  0 "events outside their day's partition"
assert_eq "$(sql "SELECT string_agg(p || ':' || n, ' ' ORDER BY p) FROM
                  (SELECT tableoid::regclass::text AS p, count(*) AS n FROM events GROUP BY 1) AS x")" \
  "$(cat "$T_WORK"/{old,midnight,today,ahead}.jsonl | python3 -c '
import collections, json, sys
n = collections.Counter("events_" + json.loads(l)["timestamp"][:10].replace("-", "") for l in sys.stdin)
print(" ".join(f"{p}:{c}" for p, c in sorted(n.items())))')" "events per partition"

# A conversation across midnight: one timeline from two partitions.
lwi=$(python3 - "$T_WORK/midnight.jsonl" <<'PY'
import collections, json, sys
days = collections.defaultdict(set)
for line in open(sys.argv[1]):
    e = json.loads(line)
    days[e["liveWorkItemId"]].add(e["timestamp"][:10])
print(next(lwi for lwi, d in days.items() if len(d) == 2))
PY
)
assert_eq "$(sql "SELECT count(DISTINCT tableoid) FROM events WHERE live_work_item_id = '$lwi'")" 2 \
  "partitions holding the conversation across midnight"
"$CONVDIAG" history --json "$lwi" > "$T_WORK/history.json"
python3 - "$T_WORK/midnight.jsonl" "$T_WORK/history.json" "$lwi" <<'PY'
import json, sys
want = sorted(e["timestamp"] for e in map(json.loads, open(sys.argv[1])) if e["liveWorkItemId"] == sys.argv[3])
got = [r["timestamp"] for r in json.load(open(sys.argv[2]))]
if got != want:
    sys.exit(f"FAIL: history of {sys.argv[3]}: {got} != {want}")
print(f"ok: history across midnight: {len(got)} entries, {want[0]} to {want[-1]}")
PY

# ---- a database that already holds events (migrated up to 0004) keeps every row
old_db="${T_DB}_old"
cleanup_old_db() {
  local rc=$?
  set +e
  drop_db "$old_db" >/dev/null 2>&1
  (exit "$rc")
  t_cleanup
}
trap cleanup_old_db EXIT
admin_sql "CREATE DATABASE \"$old_db\""
old_sql() { PGDATABASE=$old_db sql "$1"; }
# What migrate does before the first migration, then 0001-0004 as it applies them.
old_sql "CREATE TABLE schema_migrations (version text PRIMARY KEY, name text NOT NULL,
         checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
for f in "$CD_SOURCE_ROOT"/migrations/000[1-4]_*.sql; do
  PGDATABASE=$old_db psql -X -q -1 -v ON_ERROR_STOP=1 -f "$f" >/dev/null
  name=$(basename "$f")
  sum=$(python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$f")
  old_sql "INSERT INTO schema_migrations (version, name, checksum) VALUES ('${name:0:4}', '$name', '$sum')"
done
# The columns 0004 knows of: later migrations add some.
for t in events conversations scenario_runs; do
  cols=$(old_sql "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
                    FROM information_schema.columns WHERE table_name = '$t'")
  sql "\\copy (SELECT $cols FROM $t) TO '$T_WORK/$t.rows'"
done
old_sql "\\copy events FROM '$T_WORK/events.rows'"
old_sql "\\copy conversations FROM '$T_WORK/conversations.rows'"
old_sql "\\copy scenario_runs FROM '$T_WORK/scenario_runs.rows'"
digest="SELECT md5(string_agg(e::text, E'\\n' ORDER BY event_id, event_time)) FROM events AS e"
# 0014 adds each event's convdiag.eventId to customDimensions; the rest stays as it was.
timeline="SELECT md5(string_agg((to_jsonb(t) #- '{customDimensions,convdiag.eventId}')::text, E'\\n'))
            FROM conversation_timeline('$lwi') AS t"
before=$(old_sql "$digest")
timeline_before=$(old_sql "$timeline")
assert_eq "$(old_sql "SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")" r "events before 0005"
PGDATABASE=$old_db CONVDIAG_EVENTS_RETENTION_DAYS=0 "$CONVDIAG" migrate > "$T_WORK/migrate_old.out"
assert_eq "$(old_sql "SELECT string_agg(version, ' ' ORDER BY version) FROM schema_migrations WHERE version <= '0005'")" \
  "0001 0002 0003 0004 0005" "migrations recorded"
assert_eq "$(old_sql "SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")" p "events after 0005"
assert_eq "$(old_sql 'SELECT count(*) FROM events')" "$total" "rows after migrating"
assert_eq "$(old_sql "$digest")" "$before" "digest of every row after migrating"
assert_eq "$(old_sql "$timeline")" "$timeline_before" "timeline after migrating"
assert_eq "$(old_sql "SELECT count(*) FROM events
                      WHERE tableoid::regclass::text <> 'events_' || to_char(event_time AT TIME ZONE 'UTC', 'YYYYMMDD')")" \
  0 "migrated events outside their day's partition"
assert_eq "$(old_sql "SELECT string_agg(indexrelid::regclass::text, ' ' ORDER BY 1)
                      FROM pg_index WHERE indrelid = 'events'::regclass")" \
  "events_pkey events_conversation_idx events_operation_idx" "indexes of events"
assert_eq "$(old_sql "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_pkey'")" \
  "PRIMARY KEY (event_id, event_time)" "key of events"
assert_eq "$(old_sql "SELECT has_table_privilege('convdiag_analyst', 'events', 'SELECT')
                        AND has_function_privilege('convdiag_analyst', 'conversation_timeline(text)', 'EXECUTE')
                        AND has_function_privilege('convdiag_analyst', 'event_custom_dimensions(events, bigint)', 'EXECUTE')
                        AND NOT has_table_privilege('convdiag_analyst', 'events', 'DELETE')")" t "analyst grants"
assert_eq "$(old_sql "SELECT count(*) FROM pg_description WHERE objoid = 'events'::regclass AND objsubid > 0")" \
  26 "column comments of events"
drop_db "$old_db"

# ---- a replay is stored once; the same eventId with another timestamp is another row
for g in old midnight today ahead; do
  "$CONVDIAG" simulate --seed "${seed[$g]}" --start "${start[$g]}" --conversations 3 >/dev/null
done
python3 - "$T_WORK/today.jsonl" > "$T_WORK/retimed.jsonl" <<'PY'
import json, sys
e = json.loads(open(sys.argv[1]).readline())
e["timestamp"] = e["timestamp"][:11] + "12:00:00.000Z"  # same day, another time
print(e["liveWorkItemId"] + "\t" + json.dumps(e, separators=(",", ":")))
PY
kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -K $'\t' < "$T_WORK/retimed.jsonl"
CONVDIAG_EVENTS_RETENTION_DAYS=0 "$CONVDIAG" run --until-caught-up > "$T_WORK/run2.out"
grep -q "1 events stored, $total duplicates" "$T_WORK/run2.out" || fail "replay: $(cat "$T_WORK/run2.out")"
total=$((total + 1))
assert_eq "$(sql 'SELECT count(*) FROM events')" "$total" "events after the replay"
retimed=$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["eventId"])' "$T_WORK/today.jsonl")
assert_eq "$(sql "SELECT count(*) FROM events WHERE event_id = '$retimed'")" 2 \
  "rows of an eventId sent again with another timestamp"

# ---- an end event sent again with another timestamp closes a run of its own: in the
# timeline each copy is one entry, matched to its own run
python3 - "$T_WORK/today.jsonl" > "$T_WORK/retimed_end.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["status"] == "Completed":
        e["timestamp"] = e["timestamp"][:11] + "13:00:00.000Z"
        print(e["liveWorkItemId"] + "\t" + json.dumps(e, separators=(",", ":")))
        break
PY
kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -K $'\t' < "$T_WORK/retimed_end.jsonl"
CONVDIAG_EVENTS_RETENTION_DAYS=0 "$CONVDIAG" run --until-caught-up > "$T_WORK/run2b.out"
total=$((total + 1))
IFS=$'\t' read -r lwi end_json < "$T_WORK/retimed_end.jsonl"
end_id=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["eventId"])' "$end_json")
assert_eq "$(sql "SELECT count(*) FROM scenario_runs WHERE end_event_id = '$end_id'")" 2 \
  "runs closed by the two copies of $end_id"
assert_eq "$(sql "SELECT count(*) FROM conversation_timeline('$lwi')")" \
  "$(sql "SELECT count(*) FROM events WHERE live_work_item_id = '$lwi'")" \
  "timeline entries of $lwi, one per stored event"

# ---- retention (events.retention.days = 30, the default) at run start: only the old day goes
before=$(partitions)
old_part=$(part "$(day -40)")
old_n=$(wc -l < "$T_WORK/old.jsonl")
"$CONVDIAG" run --until-caught-up --log-level info > "$T_WORK/run3.out" 2> "$T_WORK/run3.err"
assert_eq "$(partitions)" "${before/$old_part /}" "partitions after retention"
grep -q "dropped partition $old_part (events of $(day -40), .*older than events.retention.days = 30" \
  "$T_WORK/run3.err" || fail "drop not logged: $(cat "$T_WORK/run3.err")"
ok "retention dropped $old_part and logged it"
assert_eq "$(sql 'SELECT count(*) FROM events')" "$((total - old_n))" "events after retention"
"$CONVDIAG" migrate > "$T_WORK/migrate2.out"
grep -q "0 created, 0 dropped" "$T_WORK/migrate2.out" || fail "migrate after retention: $(cat "$T_WORK/migrate2.out")"

# ---- an event older than retention is dead-lettered, and makes no partition
sim=(--seed 45 --start "$(day -35)T10:00:00.000Z" --conversations 1)
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
late=$("$CONVDIAG" simulate "${sim[@]}" --dry-run 2>/dev/null | wc -l)
"$CONVDIAG" run --until-caught-up > "$T_WORK/run4.out"
assert_eq "$(sql "SELECT count(*) FROM dead_letters
                  WHERE reason LIKE 'timestamp: ''$(day -35)T%'' is older than the retention period (events.retention.days = 30): its day is no longer kept'")" \
  "$late" "events older than retention dead-lettered"
assert_eq "$(sql "SELECT to_regclass('$(part "$(day -35)")') IS NULL")" t "no partition for $(day -35)"
assert_eq "$(sql 'SELECT count(*) FROM events')" "$((total - old_n))" "events after the late ones"

# ---- an event more than events.future.max.days (14) ahead is dead-lettered, and makes no partition
sim=(--seed 48 --start "$(day 20)T10:00:00.000Z" --conversations 1)
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
early=$("$CONVDIAG" simulate "${sim[@]}" --dry-run 2>/dev/null | wc -l)
"$CONVDIAG" run --until-caught-up > "$T_WORK/run4b.out"
assert_eq "$(sql "SELECT count(*) FROM dead_letters
                  WHERE reason LIKE 'timestamp: ''$(day 20)T%'' is more than 14 days ahead of this host''s clock (events.future.max.days = 14): its day gets no partition'")" \
  "$early" "events more than 14 days ahead dead-lettered"
assert_eq "$(sql "SELECT to_regclass('$(part "$(day 20)")') IS NULL")" t "no partition for $(day 20)"
assert_eq "$(sql 'SELECT count(*) FROM events')" "$((total - old_n))" "events after the early ones"

# ---- a partition dropped behind a running instance's back is made again
wait_rows() { # SQL EXPECTED WHAT: polls up to 30 s
  local got
  for _ in $(seq 300); do
    got=$(sql "$1")
    [[ $got == "$2" ]] && break
    sleep 0.1
  done
  assert_eq "$got" "$2" "$3"
}
"$CONVDIAG" run --log-level info > "$T_WORK/run5.out" 2> "$T_WORK/run5.err" &
T_PIDS=$!
ahead=$(part "$(day 3)")
sim=(--seed 46 --start "$(day 3)T10:00:00.000Z" --conversations 1)
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
n1=$("$CONVDIAG" simulate "${sim[@]}" --dry-run 2>/dev/null | wc -l)
wait_rows "SELECT count(*) FROM $ahead" "$n1" "events in $ahead"
sql "DROP TABLE $ahead"
sim=(--seed 47 --start "$(day 3)T11:00:00.000Z" --conversations 1)
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
n2=$("$CONVDIAG" simulate "${sim[@]}" --dry-run 2>/dev/null | wc -l)
wait_rows "SELECT count(*) FROM events WHERE event_time >= '$(day 3)' AND event_time < '$(day 4)'" "$n2" \
  "events of $(day 3) after its partition was dropped and made again"
kill -TERM "$T_PIDS"
wait "$T_PIDS"
T_PIDS=
grep -q "created partition $ahead for an event of that day" "$T_WORK/run5.err" ||
  fail "partition not made again: $(cat "$T_WORK/run5.err")"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" "$((late + early))" "dead letters after the partition came back"
echo "1 passed, 0 failed"
