#!/usr/bin/env bash
# One simulated stream, with disorder and duplicates, consumed twice: once
# straight by one instance with one writer, once by two instances of three
# writers each sharing the group through rebalances while being killed with
# -9.  The derived tables (scenario_runs, conversations, and each event's
# operation_Id) must come out identical.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init tagging 4

sim=(--seed 31 --start "$SIM_START" --events "${CD_TAGGING_EVENTS:-30000}")
if "$CONVDIAG" simulate --help | grep -q -- --disorder; then sim+=(--disorder); fi
"$CONVDIAG" simulate "${sim[@]}" --progress 0 >/dev/null

dump() {
  PGDATABASE=$1 sql "COPY (SELECT live_work_item_id, scenario, category, state, start_event_id,
                             start_time, end_event_id, end_time, end_status, duration_ms,
                             duration_source, stale
                        FROM scenario_runs ORDER BY 1, 2, 5 NULLS FIRST, 7 NULLS FIRST) TO STDOUT"
  PGDATABASE=$1 sql "COPY (SELECT live_work_item_id, organization_id, channel_type, operation_id,
                             first_event_time, last_event_time, outcome, outcome_time, closed_time,
                             event_count, started_count, completed_count, failed_count,
                             unknown_scenario_count
                        FROM conversations ORDER BY 1) TO STDOUT"
  PGDATABASE=$1 sql "COPY (SELECT event_id, operation_id, operation_id_source
                        FROM events ORDER BY 1) TO STDOUT"
}

# Straight: one instance, one writer, start to end.
"$CONVDIAG" run --until-caught-up --group "straight-$T_ID" --set ingest.writers=1 \
  > "$T_WORK/straight.out"
cat "$T_WORK/straight.out"
dump "$T_DB" > "$T_WORK/straight.tsv"
runs=$(sql "SELECT count(*) FROM scenario_runs")
[[ $runs -gt 1000 ]] || fail "only $runs scenario runs from the straight run"
ok "straight: $runs scenario runs, $(sql 'SELECT count(*) FROM conversations') conversations"
# Disorder leaves ends without starts and starts without ends; the events are
# days old, so every run still open has been flagged stale by the final sweep.
[[ $(sql "SELECT count(*) FROM scenario_runs WHERE state = 'unpaired'") -gt 0 ]] ||
  fail "no unpaired runs from a disordered stream"
stale=$(sql "SELECT count(*) FROM scenario_runs WHERE stale")
[[ $stale -gt 0 ]] || fail "no stale runs"
assert_eq "$(sql "SELECT count(*) FROM scenario_runs WHERE state = 'open' AND NOT stale")" 0 \
  "open runs not flagged stale"
# Counted as flagged; a flagged run may close later, so the count can only be higher.
counted=$(sed -n 's/.* \([0-9]*\) runs flagged stale.*/\1/p' "$T_WORK/straight.out")
(( counted >= stale )) || fail "$stale stale runs stored but only $counted counted"
ok "$stale stale runs stored, $counted counted as flagged"

# Disturbed: a second database, two instances, rebalances and kill -9.
other="${T_DB}_b"
admin_sql "CREATE DATABASE \"$other\""
export PGDATABASE=$other
"$CONVDIAG" migrate >/dev/null
opts=(--group "disturbed-$T_ID" --set batch.max.events=300 --set kafka.session.timeout.ms=6000
      --set ingest.writers=3 --progress 0)
# start VAR: an instance in the background (a child of this shell, so `wait` works).
start() { "$CONVDIAG" run "${opts[@]}" >/dev/null 2>>"$T_WORK/disturbed.err" & printf -v "$1" %s $!; }
wait_rows() { for _ in $(seq 200); do [[ $(sql 'SELECT count(*) FROM events') -gt $1 ]] && return; sleep 0.05; done; }

start a; T_PIDS="$a"
wait_rows 0
start b; T_PIDS="$a $b"                  # rebalance: partitions split between a and b
wait_rows "$(sql 'SELECT count(*) FROM events')"
sleep "0.$((RANDOM % 8))"
kill -9 "$a"; wait "$a" 2>/dev/null || true  # a dies mid-batch
ok "kill -9 of instance a with $(sql 'SELECT count(*) FROM events') events stored"
start c; T_PIDS="$b $c"                  # another rebalance
wait_rows "$(sql 'SELECT count(*) FROM events')"
sleep "0.$((RANDOM % 8))"
kill -9 "$b"; wait "$b" 2>/dev/null || true
ok "kill -9 of instance b with $(sql 'SELECT count(*) FROM events') events stored"
kill -TERM "$c"; wait "$c" || fail "instance c did not stop cleanly: $(tail -5 "$T_WORK/disturbed.err")"
T_PIDS=
"$CONVDIAG" run --until-caught-up "${opts[@]}" > "$T_WORK/final.out"
cat "$T_WORK/final.out"
dump "$other" > "$T_WORK/disturbed.tsv"
drop_db "$other"

if ! cmp -s "$T_WORK/straight.tsv" "$T_WORK/disturbed.tsv"; then
  diff "$T_WORK/straight.tsv" "$T_WORK/disturbed.tsv" | head -20 >&2
  fail "derived tables differ between the straight and the disturbed runs"
fi
ok "scenario_runs, conversations and operation IDs identical ($(wc -l < "$T_WORK/straight.tsv") rows)"
echo "1 passed, 0 failed"
