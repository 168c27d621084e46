#!/usr/bin/env bash
# bench/export: items per second from the export outbox to the ingestion
# emulator, gzip on, and bytes on the wire per item.
#
# The outbox is filled once by the real pipeline (simulate -> run, without
# sending), saved, and restored before each round; a round times
# `convdiag export --until-drained` until every item has been accepted.  The
# emulator runs on the same 2 cores, validating and keeping every item, so
# the figure is what one machine does end to end, not the exporter alone.
# Usage: run.sh [EVENTS] [ROUNDS] [WORKERS...]  (200000, 3, 1 2)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../../deploy/local/env.sh
. "$root/deploy/local/env.sh"
# shellcheck source=../lib.sh
. "$root/bench/lib.sh"
events=${1:-200000}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
workers=("${@:-1}")
(( $# )) || workers=(1 2)
convdiag="$root/build/services/convdiag/convdiag"
emulator="$root/build/services/emulator/convdiag-emulator"

"$root/deploy/local/build.sh" >/dev/null
CD_SKIP_INSTALL=${CD_SKIP_INSTALL:-0} "$root/deploy/local/stack.sh" up >/dev/null

id="bench_export_$$"
ikey=6a1e2f3b-0c4d-4e5f-8a9b-0c1d2e3f4a5b
export PGDATABASE=$id CONVDIAG_KAFKA_TOPIC=$id CONVDIAG_LOG_LEVEL=warn
work=$(mktemp -d)
emu_pid=
cleanup() {
  [[ -n "$emu_pid" ]] && kill "$emu_pid" 2>/dev/null
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

# Recent events (the service keeps 48 h): simulated conversations start every
# few seconds, so 200,000 events span about 13 hours.
echo "bench/export: storing $events events (outbox filled, nothing sent)"
"$convdiag" simulate --events "$events" --seed 1 --progress 0 \
  --start "$(date -u -d '-20 hours' +%Y-%m-%dT%H:%M:%S.000Z)" 2>/dev/null
CONVDIAG_EXPORT_WORKERS=0 "$convdiag" run --until-caught-up --progress 0 >/dev/null
psql -X -q -c "CREATE TABLE outbox_saved AS SELECT * FROM export_outbox"
rows=$(psql -X -A -t -c "SELECT count(*) FROM outbox_saved")
items=$(psql -X -A -t -c "SELECT sum(cardinality(event_ids)) FROM outbox_saved")
[[ $items == "$events" ]] || { echo "bench/export: outbox holds $items of $events events" >&2; exit 1; }

"$emulator" --listen 127.0.0.1:0 --ikey "$ikey" --max-items $((events + 1000)) \
  --max-body $((64 * 1024 * 1024)) 2>"$work/emulator.log" &
emu_pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening ingestion=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/emulator.log" 2>/dev/null || true)
  [[ -n "$port" ]] && break
  sleep 0.05
done
[[ -n "$port" ]] || { echo "bench/export: the emulator did not start" >&2; exit 1; }
url="http://127.0.0.1:$port"
export APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$ikey;IngestionEndpoint=$url/"
stat() { curl -sf "$url/api/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "bench/export: $items items in $rows outbox rows, batches of $(( items / rows )) items, gzip level ${CONVDIAG_EXPORT_GZIP_LEVEL:-1}"
now() { date +%s.%N; }
# CPU ticks (user + system) used so far by the emulator, and by this stack's
# PostgreSQL (bench/lib.sh: the exporter's backends that ended count too).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
bench_pg_init || exit 1
hz=$(getconf CLK_TCK)
for w in "${workers[@]}"; do
  results=()
  for r in $(seq "$rounds"); do
    psql -X -q -c "TRUNCATE export_outbox, export_failures" \
      -c "INSERT INTO export_outbox OVERRIDING SYSTEM VALUE SELECT * FROM outbox_saved" \
      -c "VACUUM ANALYZE export_outbox"
    psql -X -q -c "CHECKPOINT" 2>/dev/null || true
    curl -sf -X DELETE "$url/api/items" >/dev/null
    e0=$(ticks "$emu_pid"); p0=$(pg_ticks)
    t0=$(now)
    /usr/bin/time -f "%U %S" -o "$work/time" \
      "$convdiag" export --until-drained --workers "$w" --progress 0 > "$work/export.out"
    t1=$(now)
    e1=$(ticks "$emu_pid"); p1=$(pg_ticks)
    read -r xu xs < "$work/time"
    accepted=$(stat itemsAccepted)
    [[ $accepted == "$items" ]] || { echo "bench/export: $accepted of $items accepted" >&2; exit 1; }
    [[ $(stat duplicates) == 0 ]] || { echo "bench/export: duplicates" >&2; exit 1; }
    read -r rate bpi < <(python3 -c "
t = $t1 - $t0
print(f'{$items / t:.0f} {$(stat bytesReceived) / $items:.1f}')")
    printf 'workers=%s round %s: %s items in %.2f s = %s items/s, %s bytes/item on the wire, %s requests\n' \
      "$w" "$r" "$items" "$(python3 -c "print($t1 - $t0)")" "$rate" "$bpi" "$(stat requests)"
    python3 -c "
n = $items
print(f'  CPU per item: exporter {($xu + $xs) / n * 1e6:.1f} us, emulator {($e1 - $e0) / $hz / n * 1e6:.1f} us, '
      f'PostgreSQL {($p1 - $p0) / $hz / n * 1e6:.1f} us')"
    results+=("$rate")
  done
  median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "workers=$w: median of $rounds rounds: $median items/s (target 64000)"
done
