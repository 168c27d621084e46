#!/usr/bin/env bash
# Messages keyed badly: each event of a conversation on a partition of its
# own choosing, so that several writers, in two instances at once, change
# the same conversations.  In whatever order they come, nothing one writer
# stored may be lost by another: every conversation row counts exactly its
# stored events, with their first and last times, and every start and end
# is in exactly one scenario run.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init keys 4

events=${CD_KEYS_EVENTS:-30000}
# The simulator's stream with a random key on each message.
"$CONVDIAG" simulate --seed 51 --start "$SIM_START" --events "$events" --disorder --dry-run \
  2>/dev/null | python3 -c '
import random, sys
random.seed(51)
for line in sys.stdin:
    sys.stdout.write("k%d\t%s" % (random.randrange(1 << 30), line))' > "$T_WORK/keyed"
kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -K $'\t' -l "$T_WORK/keyed"
spread=$(kcat -C -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -e -q -f '%p %s\n' |
  python3 -c '
import json, sys
parts = {}
for line in sys.stdin:
    p, value = line.split(" ", 1)
    try:
        lwi = json.loads(value)["liveWorkItemId"]
    except Exception:
        continue
    parts.setdefault(lwi, set()).add(p)
print(sum(1 for s in parts.values() if len(s) > 1))')
((spread > 100)) || fail "only $spread conversations spread over several partitions"
ok "$spread conversations have events on several partitions"

# Two instances of two writers each, small batches, started together.
opts=(--set batch.max.events=100 --set ingest.writers=2 --progress 0)
"$CONVDIAG" run "${opts[@]}" --until-caught-up > "$T_WORK/a.out" 2> "$T_WORK/a.err" &
a=$!
"$CONVDIAG" run "${opts[@]}" --until-caught-up > "$T_WORK/b.out" 2> "$T_WORK/b.err" &
b=$!
T_PIDS="$a $b"
wait "$a" || fail "instance a: $(tail -3 "$T_WORK/a.err")"
wait "$b" || fail "instance b: $(tail -3 "$T_WORK/b.err")"
T_PIDS=
# Whatever one left to the other at a rebalance, a last run picks up.
"$CONVDIAG" run "${opts[@]}" --until-caught-up > "$T_WORK/final.out"
cat "$T_WORK/a.out" "$T_WORK/b.out" "$T_WORK/final.out"

# What the stream holds, as the validator alone judges it.
read -r want_events want_bad < <(cut -f2- "$T_WORK/keyed" | "$CONVDIAG" check 2>/dev/null |
  python3 -c '
import json, sys
ok, bad = set(), 0
for line in sys.stdin:
    r = json.loads(line)
    if r["ok"]:
        ok.add((r["eventId"], r["timestamp"]))
    else:
        bad += 1
print(len(ok), bad)')
valid=$(sql "SELECT count(*) FROM events")
assert_eq "$valid" "$want_events" "events stored (distinct valid ones of the stream)"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" "$want_bad" "dead letters"
assert_eq "$(sql "SELECT count(*) FROM (SELECT DISTINCT live_work_item_id FROM events) AS e")" \
  "$(sql 'SELECT count(*) FROM conversations')" "conversations, one per liveWorkItemId stored"
assert_eq "$(sql "SELECT count(*) FROM conversations AS c JOIN (
    SELECT live_work_item_id, count(*) AS n, count(*) FILTER (WHERE status = 'Started') AS s,
           count(*) FILTER (WHERE status = 'Completed') AS co,
           count(*) FILTER (WHERE status = 'Failed') AS f,
           min(event_time) AS first, max(event_time) AS last
      FROM events GROUP BY live_work_item_id) AS e USING (live_work_item_id)
   WHERE c.event_count <> e.n OR c.started_count <> e.s OR c.completed_count <> e.co
      OR c.failed_count <> e.f OR c.first_event_time <> e.first OR c.last_event_time <> e.last")" \
  0 "conversation rows whose counts or times differ from their stored events"
# Every start and end a run names, and how many runs name each event.
refs="SELECT live_work_item_id, start_event_id AS id, start_time AS t FROM scenario_runs
       WHERE start_event_id IS NOT NULL
      UNION ALL
      SELECT live_work_item_id, end_event_id, end_time FROM scenario_runs
       WHERE end_event_id IS NOT NULL"
assert_eq "$(sql "SELECT count(*) FROM (SELECT count(r.id) AS runs FROM events AS e
    LEFT JOIN ($refs) AS r ON r.live_work_item_id = e.live_work_item_id AND r.id = e.event_id
     AND r.t = e.event_time GROUP BY e.event_id, e.event_time) AS n WHERE runs <> 1")" \
  0 "events not in exactly one scenario run"
assert_eq "$(sql "SELECT count(*) FROM ($refs) AS r LEFT JOIN events AS e
    ON e.live_work_item_id = r.live_work_item_id AND e.event_id = r.id AND e.event_time = r.t
    WHERE e.event_id IS NULL")" 0 "starts and ends of scenario runs not stored as events"
ok "$valid events of $(sql 'SELECT count(*) FROM conversations') conversations, their state whole"
echo "1 passed, 0 failed"
