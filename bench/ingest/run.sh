#!/usr/bin/env bash
# bench/ingest: `convdiag run` from start until caught up on N simulated events,
# against a plain COPY of the same rows into an identical table (same columns,
# keys and indexes, partitioned by day the same way), in the same run.  Prints
# events/s for both and the ratio, per round and the median.
# Usage: run.sh [EVENTS] [ROUNDS]  (1000000, 3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../../deploy/local/env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=../lib.sh
. "$root/bench/lib.sh"
events=${1:-1000000}
rounds=${2:-3}
convdiag="$root/build/services/convdiag/convdiag"

"$root/deploy/local/build.sh" >/dev/null
CD_SKIP_INSTALL=${CD_SKIP_INSTALL:-0} "$root/deploy/local/stack.sh" up >/dev/null

id="bench_ingest_$$"
# The outbox is written, as in production; sending is bench/export's business.
export PGDATABASE=$id CONVDIAG_KAFKA_TOPIC=$id CONVDIAG_LOG_LEVEL=warn CONVDIAG_EXPORT_WORKERS=0
work=$(mktemp -d)
cleanup() {
  # An autovacuum worker still on the database makes DROP fail for a moment.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    PGDATABASE=postgres psql -X -q -c "DROP DATABASE IF EXISTS $id WITH (FORCE)" 2>/dev/null && break
    sleep 0.5
  done
  rm -rf "$work"
}
trap cleanup EXIT
PGDATABASE=postgres psql -X -q -c "CREATE DATABASE $id"
"$root/deploy/local/kafka.sh" topic "$id" 4 >/dev/null
"$convdiag" migrate >/dev/null
mirror_partitions

echo "bench/ingest: producing $events events"
# Today's events: their partitions exist (`migrate` creates them ahead), and
# retention does not turn them away, whenever the bench runs.
"$convdiag" simulate --events "$events" --seed 1 --start "$(date -u +%Y-%m-%d)T00:00:00.000Z" --progress 0

now() { date +%s.%N; }
results=()
for r in $(seq "$rounds"); do
  # Everything a run writes, so that every round starts from an empty
  # database, as the first does.
  psql -X -q -c "TRUNCATE events, events_copy, dead_letters, conversations, scenario_runs, export_outbox, export_failures"
  checkpoint
  t0=$(now)
  # shellcheck disable=SC2086
  "$convdiag" run --until-caught-up --group "$id-$r" --progress 0 ${CD_BENCH_RUN_OPTS:-} > "$work/run.out"
  t1=$(now)
  stored=$(psql -X -A -t -c "SELECT count(*) FROM events")
  [[ $stored == "$events" ]] || { echo "bench/ingest: run stored $stored of $events" >&2; exit 1; }
  # The same rows, as a client would send them: text COPY over the same connection kind.
  [[ -s "$work/rows" ]] || psql -X -q -c "\\copy (SELECT * FROM events) TO '$work/rows'"
  mirror_partitions
  checkpoint
  t2=$(now)
  psql -X -q -c "\\copy events_copy FROM '$work/rows'"
  t3=$(now)
  line=$(python3 -c "
e=$events; p=$t1-$t0; c=$t3-$t2
print(f'{e/p:.0f} {e/c:.0f} {(e/p)/(e/c):.3f} {p:.2f} {c:.2f}')")
  read -r prate crate ratio psec csec <<< "$line"
  printf 'round %d: pipeline %s events/s (%s s), plain COPY %s events/s (%s s), ratio %s\n' \
    "$r" "$prate" "$psec" "$crate" "$csec" "$ratio"
  results+=("$prate $crate $ratio")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin]
p, c, r = (statistics.median(col) for col in zip(*rows))
print(f"median of {len(rows)}: pipeline {p:.0f} events/s, plain COPY {c:.0f} events/s, ratio {r:.3f} (target >= 1.0)")'
