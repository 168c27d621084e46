#!/usr/bin/env bash
# bench/history: one conversation's history, and the analysts' stats, with 10
# million events stored.  Builds the dataset once in its own database (SQL,
# see build.sql and README.md), then prints median, p90 and p99 in ms of:
#   convdiag history --json LWI        end to end (process, connection, query, output)
#   conversation_timeline(LWI)         EXPLAIN ANALYZE execution and planning time
#   conversation_timeline(LWI)         client-side latency under pgbench, one client
# and the time of each stats function over the whole dataset and over one day.
# Usage: run.sh [CONVERSATIONS] [SAMPLES]  (1000000 conversations of 10 events, 200)
# CD_BENCH_DB (convdiag_bench_history) names the database, CD_BENCH_SECONDS (20)
# the pgbench run, CD_BENCH_REBUILD=1 builds the dataset again.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../../deploy/local/env.sh
. "$root/deploy/local/env.sh"
conversations=${1:-1000000}
samples=${2:-200}
seconds=${CD_BENCH_SECONDS:-20}
days=30
convdiag="$root/build/services/convdiag/convdiag"

"$root/deploy/local/build.sh" >/dev/null
CD_SKIP_INSTALL=${CD_SKIP_INSTALL:-0} "$root/deploy/local/stack.sh" up >/dev/null

db=${CD_BENCH_DB:-convdiag_bench_history}
export PGDATABASE=$db CONVDIAG_LOG_LEVEL=warn
# The dataset lies in the past: keep all of it, whatever day the bench runs.
export CONVDIAG_EVENTS_RETENTION_DAYS=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- the dataset: built once, reused while it has the size asked for
events=$((conversations * 10))
built=$(psql -X -A -t -c "SELECT conversations || ' ' || first_day FROM bench_history_dataset" 2>/dev/null || true)
if [[ "${built%% *}" != "$conversations" || "${CD_BENCH_REBUILD:-0}" == 1 ]]; then
  first_day=$(date -u -d "today - $((days + 2)) days" +%Y-%m-%d)
  echo "bench/history: building $events events ($conversations conversations from $first_day, $days days) in database $db"
  PGDATABASE=postgres psql -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  PGDATABASE=postgres psql -X -q -c "CREATE DATABASE $db"
  "$convdiag" migrate >/dev/null
  t0=$(date +%s)
  psql -X -q -v conversations="$conversations" -v days="$days" -v first_day="$first_day" \
    -f "$here/build.sql" > "$work/build.log"
  psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE bench_history_dataset (conversations bigint NOT NULL, first_day date NOT NULL,
                                    days integer NOT NULL, built_at timestamptz NOT NULL DEFAULT now());
COMMENT ON TABLE bench_history_dataset IS 'The dataset bench/history built here: conversations of 10 events from first_day on, over days days.';
INSERT INTO bench_history_dataset (conversations, first_day, days) VALUES ($conversations, '$first_day', $days);
SQL
  echo "bench/history: built in $(( $(date +%s) - t0 )) s"
else
  first_day=${built#* }
  echo "bench/history: reusing the dataset of database $db ($conversations conversations from $first_day)"
  "$convdiag" migrate >/dev/null # later migrations, today's partitions
fi
psql -X -A -t -F ' ' -c "SELECT count(*), pg_size_pretty(pg_total_relation_size('events'::regclass)
                                + (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
                                    WHERE inhparent = 'events'::regclass))
                           FROM events" |
  { read -r n size; echo "bench/history: events holds $n rows ($size with indexes) in $(psql -X -A -t -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass") partitions"; }

# percentiles NAME < values in ms, one a line: nearest rank
percentiles() {
  python3 -c '
import math, sys
v = sorted(float(x) for x in sys.stdin if x.strip())
p = lambda q: v[max(0, math.ceil(q * len(v)) - 1)]
print(f"{sys.argv[1]:<44} n={len(v):<5} median {p(.5):7.2f}  p90 {p(.9):7.2f}  p99 {p(.99):7.2f}  max {v[-1]:7.2f} ms")' "$1"
}

# ---- one conversation's history, for random conversations
psql -X -A -t -c "SELECT live_work_item_id FROM conversations ORDER BY random() LIMIT $samples" > "$work/lwis"
echo "bench/history: history of $samples random conversations (after 5 warm-up calls)"
python3 - "$convdiag" "$work/lwis" > "$work/history_ms" <<'PY'
import subprocess, sys, time
convdiag, lwis = sys.argv[1], open(sys.argv[2]).read().split()
for lwi in lwis[:5]:
    subprocess.run([convdiag, "history", "--json", lwi], stdout=subprocess.DEVNULL, check=True)
for lwi in lwis:
    t = time.perf_counter()
    subprocess.run([convdiag, "history", "--json", lwi], stdout=subprocess.DEVNULL, check=True)
    print((time.perf_counter() - t) * 1000)
PY
percentiles "convdiag history --json (end to end)" < "$work/history_ms"

while read -r lwi; do
  echo "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT * FROM conversation_timeline('$lwi');"
  printf '%s\n' '\echo @@'
done < "$work/lwis" > "$work/explain.sql"
psql -X -A -t -q -f "$work/explain.sql" > "$work/explain.out"
python3 - "$work/explain.out" "$work" <<'PY'
import json, sys
plans = [json.loads(p)[0] for p in open(sys.argv[1]).read().split("@@") if p.strip()]
with open(sys.argv[2] + "/exec_ms", "w") as f:
    f.writelines(f"{p['Execution Time']}\n" for p in plans)
with open(sys.argv[2] + "/plan_ms", "w") as f:
    f.writelines(f"{p['Planning Time']}\n" for p in plans)
with open(sys.argv[2] + "/total_ms", "w") as f:
    f.writelines(f"{p['Planning Time'] + p['Execution Time']}\n" for p in plans)
PY
percentiles "conversation_timeline: execution" < "$work/exec_ms"
percentiles "conversation_timeline: planning" < "$work/plan_ms"
percentiles "conversation_timeline: planning + execution" < "$work/total_ms"

cat > "$work/timeline.pgbench" <<SQL
\\set n random(0, $conversations - 1)
SELECT * FROM conversation_timeline(md5('lwi-' || :n)::uuid::text);
SQL
(cd "$work" && pgbench -n -c 1 -T "$seconds" -f timeline.pgbench -l --log-prefix=pgb "$db" > pgbench.out 2>&1) ||
  { cat "$work/pgbench.out" >&2; exit 1; }
cat "$work"/pgb.* | awk '{ print $3 / 1000 }' > "$work/pgbench_ms"
percentiles "conversation_timeline: pgbench, 1 client, ${seconds} s" < "$work/pgbench_ms"

# ---- the stats, over the whole dataset and over one day in the middle
since=$first_day
until=$(date -u -d "$first_day + $((days + 1)) days" +%Y-%m-%d)
day=$(date -u -d "$first_day + $((days / 2)) days" +%Y-%m-%d)
day_after=$(date -u -d "$day + 1 day" +%Y-%m-%d)
if [[ $(psql -X -A -t -c "SELECT to_regprocedure('scenario_run_stats(timestamptz, timestamptz, text)') IS NOT NULL") == t ]]; then
  functions=(scenario_run_stats abandonment_stats agent_offer_stats time_to_accept_stats
             stale_runs_by_scenario dead_letters_by_reason)
  query() { echo "SELECT * FROM $1('$2', '$3')"; }
else
  echo "bench/history: migrations/0006 not applied; plain SQL duration percentiles per scenario, channel and day instead"
  functions=(duration_percentiles)
  query() {
    echo "SELECT (r.end_time AT TIME ZONE 'UTC')::date, c.channel_type, r.scenario, count(*),
            percentile_disc(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY r.duration_ms)
       FROM scenario_runs AS r JOIN conversations AS c USING (live_work_item_id)
      WHERE r.end_time >= '$2' AND r.end_time < '$3' GROUP BY 1, 2, 3"
  }
fi
printf '%s\n' "bench/history: stats functions, median of 3 runs each (client-side, psql \\timing)"
for range in "$since $until whole dataset" "$day $day_after one day ($day)"; do
  read -r from to label <<< "$range"
  for f in "${functions[@]}"; do
    { printf '%s\n' '\timing on'
      for _ in 1 2 3; do echo "$(query "$f" "$from" "$to") \\g /dev/null"; done; } > "$work/stats.sql"
    rows=$(psql -X -A -t -c "SELECT count(*) FROM ($(query "$f" "$from" "$to")) AS x")
    psql -X -q -f "$work/stats.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' > "$work/stats_ms"
    printf '  %-24s %-32s %8.1f ms  (%s rows)\n' "$f" "$label" \
      "$(sort -n "$work/stats_ms" | sed -n 2p)" "$rows"
  done
done
if "$convdiag" stats --help >/dev/null 2>&1; then
  # Its --until, a date, includes that day.
  last=$(date -u -d "$first_day + $days days" +%Y-%m-%d)
  for range in "$since $last whole dataset" "$day $day one day ($day)"; do
    read -r from to label <<< "$range"
    for _ in 1 2 3; do
      python3 - "$convdiag" "$from" "$to" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
subprocess.run([sys.argv[1], "stats", "--since", sys.argv[2], "--until", sys.argv[3]],
               stdout=subprocess.DEVNULL, check=True)
print((time.perf_counter() - t) * 1000)
PY
    done > "$work/cli_ms"
    printf '  %-24s %-32s %8.1f ms  (median of 3, end to end)\n' "convdiag stats" "$label" \
      "$(sort -n "$work/cli_ms" | sed -n 2p)"
  done
fi
