#!/usr/bin/env bash
# bench/latency: how convdiag keeps up with a steady stream, against a minimal
# consumer (baseline.c: poll a batch, parse, COPY, commit, store offsets) run
# in the same script.  For each rate, round and system, alternating the two
# within a round: a fresh topic of 4 partitions and emptied tables, the
# consumer started and in its group, `convdiag simulate --rate R` for
# SECONDS, a wait until every event is stored, SIGTERM.  Each event's latency
# is its Kafka message timestamp (CreateTime, set by the producer) to the
# commit of the PostgreSQL transaction that stored it
# (pg_xact_commit_timestamp(xmin), track_commit_timestamp = on).  Prints
# p50/p90/p99/max per run and the medians over rounds, peak RSS and CPU of the
# consumer, CPU of the whole PostgreSQL cluster per 1,000 events, the load
# average, and the targets.  See README.md.
# Usage: run.sh [SECONDS] [ROUNDS] [RATES...]  (60, 3, 5000 10000 20000)
# CONVDIAG=path: the binary to test (default: the build, built first).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/bench/latency"
# shellcheck source=../../deploy/local/env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=../lib.sh
. "$root/bench/lib.sh"
seconds=${1:-60}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
rates=("$@")
(( ${#rates[@]} )) || rates=(5000 10000 20000)
for n in "$seconds" "$rounds" "${rates[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [SECONDS] [ROUNDS] [RATES...] (positive integers)" >&2; exit 2; }
done
# After the producer is done, how long the consumer may take to store the rest.
timeout_s=${CD_LATENCY_TIMEOUT:-60}
# The baseline polls batches as convdiag does: up to this many events or ms.
batch_max=${CONVDIAG_BATCH_MAX_EVENTS:-5000}
batch_wait=${CONVDIAG_BATCH_MAX_WAIT_MS:-200}

if [[ -n "${CONVDIAG:-}" ]]; then
  convdiag=$CONVDIAG
else
  convdiag="$root/build/services/convdiag/convdiag"
  "$root/deploy/local/build.sh" >/dev/null
fi
[[ -x "$convdiag" ]] || { echo "bench/latency: $convdiag is not executable" >&2; exit 1; }
# The stack is started only if PostgreSQL or Kafka does not answer: one that
# runs is used as it is.
if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" ||
   ! kcat -L -b "$CONVDIAG_KAFKA_BROKERS" -m 3 >/dev/null 2>&1; then
  CD_SKIP_INSTALL=${CD_SKIP_INSTALL:-0} "$root/deploy/local/stack.sh" up >/dev/null
fi

id="bench_latency_$$"
export PGDATABASE=$id CONVDIAG_LOG_LEVEL=warn CONVDIAG_EXPORT_WORKERS=0
work=$(mktemp -d)
consumer_pid=
created_db=0
created_topics=0
cleanup() {
  set +e
  [[ -n "$consumer_pid" ]] && kill -TERM "$consumer_pid" 2>/dev/null && sleep 2
  if ((created_db)); then
    # An autovacuum worker still on the database makes DROP fail for a moment.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      PGDATABASE=postgres psql -X -q -c "DROP DATABASE IF EXISTS $id WITH (FORCE)" 2>/dev/null && break
      sleep 0.5
    done
  fi
  ((created_topics)) && delete_topics
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Kafka tools as deploy/local/kafka.sh runs them (it creates topics but
# does not delete them).
delete_topics() {
  local version
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/deploy/local/kafka/pom.xml")"
  java -Xms64m -Xmx256m -XX:+UseSerialGC -cp "$CD_CACHE_DIR/kafka-$version/libs/*" \
    -Dlog4j.configuration="file:$root/deploy/local/kafka/tools-log4j.properties" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$CONVDIAG_KAFKA_BROKERS" \
    --delete --topic "${id}_.*" >/dev/null 2>&1 ||
    echo "bench/latency: could not delete the topics ${id}_*" >&2
}

bench_pg_init || exit 1
hz=$(getconf CLK_TCK)
loadavg() { cut -d ' ' -f 1 /proc/loadavg; }
echo "bench/latency: $convdiag; ${seconds} s per run, $rounds round(s), rates ${rates[*]}/s"
# shellcheck disable=SC2046 # pkg-config's flags are words
cc -O2 -o "$work/baseline" "$here/baseline.c" $(pkg-config --cflags --libs rdkafka libpq libcjson)

PGDATABASE=postgres psql -X -q -c "CREATE DATABASE $id"
created_db=1
[[ $(psql -X -A -t -c "SHOW track_commit_timestamp") == on ]] ||
  { echo "bench/latency: PostgreSQL runs without track_commit_timestamp (see deploy/local/postgres.sh)" >&2; exit 1; }
"$convdiag" migrate >/dev/null
# The baseline's table; and the analysis' scratch tables, unlogged and out of
# autovacuum's way (it would run in a later run's measurement).
mirror_partitions
psql -X -q -c "CREATE UNLOGGED TABLE kafka_ts (p integer, o bigint, ts_ms bigint) WITH (autovacuum_enabled = false)" \
  -c "CREATE UNLOGGED TABLE lat (ts_ms bigint, ms numeric, tx bigint) WITH (autovacuum_enabled = false)"
# Waits until the broker has given the group its assignment (the coordinator
# logs it), then a moment for the first offset fetch; a fixed wait if the
# broker's log is not where the local stack keeps it.
wait_assigned() {
  local group=$1 log="$CD_STACK_DIR/logs/kafka-server.log"
  if [[ ! -r "$log" ]]; then sleep 5; return 0; fi
  for _ in $(seq 300); do
    if grep -q "for group $group for generation" "$log"; then sleep 1; return 0; fi
    kill -0 "$consumer_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# (eventId, timestamp) of the last message of each partition, as SQL values
# (first line), and how many partitions have one (second line).
last_events() {
  local p
  for p in 0 1 2 3; do
    kcat -C -b "$CONVDIAG_KAFKA_BROKERS" -t "$1" -p "$p" -o -1 -c 1 -e -q -f '%s\n' 2>/dev/null || true
  done | python3 -c '
import json, sys
q = chr(39)
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print(", ".join("(%s%s%s, %s%s%s::timestamptz)" % (q, e["eventId"], q, q, e["timestamp"], q)
                for e in rows) or "(NULL, NULL)")
print(len(rows))'
}

results="$work/results"
: > "$results"
today="$(date -u +%Y-%m-%d)T00:00:00.000Z"

# One run: SYSTEM RATE ROUND.  Appends a line to $results and prints it.
one_run() {
  local sys=$1 rate=$2 round=$3
  local topic="${id}_${rate}_${round}_${sys}" table=events events=$((rate * seconds))
  [[ $sys == baseline ]] && table=events_copy
  "$root/deploy/local/kafka.sh" topic "$topic" 4 >/dev/null
  created_topics=1
  psql -X -q -c "TRUNCATE events, events_copy, dead_letters, conversations, scenario_runs, export_outbox, export_failures, kafka_ts, lat"
  [[ $sys == baseline ]] && mirror_partitions
  checkpoint
  sleep 1 # the sessions above end, and the postmaster reaps them

  local load0 p0 p1 load1 t0 t1
  load0=$(loadavg)
  p0=$(pg_ticks)
  if [[ $sys == convdiag ]]; then
    CONVDIAG_KAFKA_TOPIC=$topic CONVDIAG_KAFKA_GROUP_ID=$topic \
      /usr/bin/time -f '%M %U %S' -o "$work/time" "$convdiag" run --progress 0 \
      >"$work/consumer.log" 2>&1 &
  else
    /usr/bin/time -f '%M %U %S' -o "$work/time" "$work/baseline" "$CONVDIAG_KAFKA_BROKERS" \
      "$topic" "$topic" "$batch_max" "$batch_wait" >"$work/consumer.log" 2>&1 &
  fi
  local time_pid=$!
  for _ in $(seq 100); do
    consumer_pid=$(pgrep -P "$time_pid" || true)
    [[ -n "$consumer_pid" ]] && break
    sleep 0.05
  done
  if [[ -z "$consumer_pid" ]] || ! wait_assigned "$topic"; then
    echo "bench/latency: $sys did not join its group; its output:" >&2
    cat "$work/consumer.log" >&2
    exit 1
  fi

  # The same stream for both systems of a round: same seed, same start.
  t0=$(date +%s.%N)
  CONVDIAG_KAFKA_TOPIC=$topic "$convdiag" simulate --rate "$rate" --events "$events" \
    --seed "$round" --start "$today" --progress 0 >"$work/simulate.log" 2>&1 ||
    { cat "$work/simulate.log" >&2; exit 1; }
  t1=$(date +%s.%N)

  # Done when the last message of each partition is stored (each system
  # stores a partition's messages in order): a primary-key probe every 0.2 s,
  # over one session, so that the probes cost PostgreSQL next to nothing.
  local last want got deadline=$((SECONDS + timeout_s)) complete=1
  { read -r last; read -r want; } < <(last_events "$topic")
  coproc PROBE { psql -X -A -t -q 2>&1; }
  # shellcheck disable=SC2153 # set by coproc
  local probe_in=${PROBE[1]} probe_out=${PROBE[0]} probe_pid=$PROBE_PID
  while :; do
    echo "SELECT count(*) FROM $table WHERE (event_id, event_time) IN ($last);" >&"$probe_in"
    read -r -t 30 got <&"$probe_out" || got="no answer"
    [[ $got == "$want" ]] && break
    [[ $got =~ ^[0-9]+$ ]] || { echo "bench/latency: probe: $got" >&2; complete=0; break; }
    if ((SECONDS >= deadline)) || ! kill -0 "$consumer_pid" 2>/dev/null; then complete=0; break; fi
    sleep 0.2
  done
  exec {probe_in}>&-
  wait "$probe_pid" || true
  kill -TERM "$consumer_pid" 2>/dev/null || true
  local rc=0
  wait "$time_pid" || rc=$?
  consumer_pid=
  sleep 1 # its backend ends, and is reaped
  p1=$(pg_ticks)
  load1=$(loadavg)
  ((rc == 0)) || { echo "bench/latency: $sys exited with $rc; its output:" >&2; cat "$work/consumer.log" >&2; }

  # Kafka timestamps of every message, joined to the stored rows.
  kcat -C -b "$CONVDIAG_KAFKA_BROKERS" -t "$topic" -o beginning -e -q -f '%p %o %T\n' >"$work/ts"
  psql -X -q -c "\\copy kafka_ts FROM '$work/ts' (FORMAT text, DELIMITER ' ')"
  # Each stored event: its Kafka timestamp and its latency, in ms.
  psql -X -q -c "INSERT INTO lat
    SELECT k.ts_ms, extract(epoch FROM pg_xact_commit_timestamp(e.xmin)) * 1000 - k.ts_ms,
           e.xmin::text::bigint
      FROM $table AS e JOIN kafka_ts AS k ON k.p = e.kafka_partition AND k.o = e.kafka_offset"
  local stored txs p50 p90 p99 pmax pmin slices
  read -r stored txs p50 p90 p99 pmax pmin < <(psql -X -A -t -F ' ' -c "
    SELECT count(*), count(DISTINCT tx), $(for q in 0.5 0.9 0.99; do
      printf "coalesce(round(percentile_disc(%s) WITHIN GROUP (ORDER BY ms), 1)::text, 'nan'), " "$q"; done)
           coalesce(round(max(ms), 1)::text, 'nan'), coalesce(round(min(ms), 1)::text, 'nan')
      FROM lat")
  # p99 of each tenth of the stream, by Kafka timestamp: a consumer that
  # does not keep up shows a latency that grows.
  slices=$(psql -X -A -t -c "
    SELECT string_agg(p99, ' ' ORDER BY b) FROM (
      SELECT width_bucket(ts_ms, lo, hi, 10) AS b,
             round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms))::text AS p99
        FROM lat, (SELECT min(ts_ms) AS lo, max(ts_ms) + 1 AS hi FROM lat) AS r GROUP BY 1) AS s")
  local rss_kb cu cs
  read -r rss_kb cu cs < "$work/time"
  local produced
  produced=$(wc -l < "$work/ts")
  ((stored == events && produced == events)) || complete=0
  printf '%s\n' "$rate $round $sys $events $produced $stored $txs $complete $p50 $p90 $p99 $pmax $pmin $rss_kb $cu $cs $((p1 - p0)) $load0 $load1 $t0 $t1" >> "$results"
  # shellcheck disable=SC2046 # the fields of the line as arguments
  CD_SLICES=$slices python3 - "$hz" $(tail -n 1 "$results") <<'PY'
import os, sys
hz = int(sys.argv[1])
(rate, rnd, sysname, events, produced, stored, txs, complete, p50, p90, p99, pmax, pmin,
 rss, cu, cs, pgt, l0, l1, t0, t1) = sys.argv[2:]
events, produced, stored, txs = int(events), int(produced), int(stored), int(txs)
cpu = float(cu) + float(cs)
pg = int(pgt) / hz
per = lambda s: s / stored * 1000 if stored else float("nan")
note = "" if complete == "1" else (f"; NOT ALL STORED: {stored} of {events} ({produced} in Kafka), "
                                   "latencies of the stored ones only")
print(f"rate {rate}/s round {rnd} {sysname:8}: produced in {float(t1) - float(t0):.1f} s, "
      f"{txs} transactions ({stored / max(txs, 1):.0f} events each), "
      f"latency ms p50 {p50} p90 {p90} p99 {p99} max {pmax} (min {pmin}); "
      f"peak RSS {int(rss) / 1024:.1f} MB; CPU s consumer {cpu:.2f} ({per(cpu):.3f} per 1,000 events), "
      f"PostgreSQL {pg:.2f} ({per(pg):.3f} per 1,000 events); load {l0} -> {l1}{note}")
print(f"  p99 ms by tenth of the stream: {os.environ['CD_SLICES'] or '-'}", flush=True)
PY
  # Warnings and errors (convdiag logs at warn), the baseline's count at exit.
  if [[ -s "$work/consumer.log" ]]; then
    sed -n '1,5s/^/  | /p' "$work/consumer.log"
    (( $(wc -l < "$work/consumer.log") <= 5 )) || echo "  | ... ($(wc -l < "$work/consumer.log") lines)"
  fi
}

for rate in "${rates[@]}"; do
  for round in $(seq "$rounds"); do
    # Alternate which goes first, so that neither always follows the other.
    if ((round % 2)); then order=(convdiag baseline); else order=(baseline convdiag); fi
    for sys in "${order[@]}"; do one_run "$sys" "$rate" "$round"; done
  done
done

echo
python3 - "$hz" "$results" <<'PY'
import statistics, sys
hz = int(sys.argv[1])
rows = [l.split() for l in open(sys.argv[2]) if l.strip()]
med = statistics.median
p99_target = {10000: 250.0, 20000: 1000.0}
runs = {}
for r in rows:
    rate, rnd, name = int(r[0]), int(r[1]), r[2]
    stored = int(r[5])
    d = dict(complete=r[7] == "1", stored=stored, p50=float(r[8]), p90=float(r[9]),
             p99=float(r[10]), max=float(r[11]), rss=int(r[13]) / 1024,
             cpu=(float(r[14]) + float(r[15])) / stored * 1000 if stored else float("nan"),
             pg=int(r[16]) / hz / stored * 1000 if stored else float("nan"))
    runs.setdefault(rate, {}).setdefault(name, {})[rnd] = d

def mark(ok):
    return "ok" if ok else "MISSED"

print("summary: medians over rounds; latency = Kafka timestamp to PostgreSQL commit, ms;")
print("         CPU s per 1,000 events stored; PostgreSQL = the whole cluster")
hdr = f"{'rate/s':>7} {'system':9} {'rounds':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'RSS MB':>7} {'cons CPU':>9} {'PG CPU':>8}  targets"
print(hdr)
print("-" * len(hdr))
for rate in sorted(runs):
    for name in ("convdiag", "baseline"):
        rs = runs[rate].get(name, {})
        if not rs:
            continue
        v = list(rs.values())
        m = {k: med([x[k] for x in v]) for k in ("p50", "p90", "p99", "max", "cpu", "pg")}
        rss = max(x["rss"] for x in v)
        incomplete = sum(not x["complete"] for x in v)
        targets = []
        if name == "convdiag":
            if rate in p99_target:
                targets.append(f"p99 <= {p99_target[rate]:.0f} ms {mark(m['p99'] <= p99_target[rate])}")
            targets.append(f"RSS <= 64 MB {mark(rss <= 64)}")
        if incomplete:
            targets.append(f"{incomplete} run(s) NOT ALL STORED")
        print(f"{rate:>7} {name:9} {len(v):>6} {m['p50']:>8.1f} {m['p90']:>8.1f} {m['p99']:>8.1f} "
              f"{m['max']:>8.1f} {rss:>7.1f} {m['cpu']:>9.3f} {m['pg']:>8.3f}  {', '.join(targets)}")
    c, b = runs[rate].get("convdiag", {}), runs[rate].get("baseline", {})
    ratios = [c[k]["pg"] / b[k]["pg"] for k in c if k in b and b[k]["pg"] > 0]
    if ratios:
        r = med(ratios)
        print(f"{rate:>7} PostgreSQL CPU per event convdiag/baseline: {r:.2f} "
              f"(median of {len(ratios)} round(s): {' '.join(f'{x:.2f}' for x in ratios)}; "
              f"target <= 1.5 {mark(r <= 1.5)})")
print("RSS is the peak over rounds (the most the consumer process held).")
PY
