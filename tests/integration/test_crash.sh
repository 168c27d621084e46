#!/usr/bin/env bash
# kill -9 the consumer at random moments during a 100,000-event run; after a
# final run every event is in PostgreSQL exactly once.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init crash 4

events=${CD_CRASH_EVENTS:-100000}
kills=${CD_CRASH_KILLS:-6}
sim=(--seed 77 --start "$SIM_START" --events "$events")
"$CONVDIAG" simulate "${sim[@]}" --dry-run 2>/dev/null |
  python3 -c 'import json,sys; print("\n".join(sorted(json.loads(l)["eventId"] for l in sys.stdin)))' \
  > "$T_WORK/expected_ids"
"$CONVDIAG" simulate "${sim[@]}" --progress 0 >/dev/null
assert_eq "$(wc -l < "$T_WORK/expected_ids")" "$events" "events produced"

# Small batches make many commits to land between; static membership lets a
# restarted member take its partitions back without waiting for a session timeout.
run_opts=(--set batch.max.events=500 --set kafka.group.instance.id="crash-$T_ID"
          --set kafka.session.timeout.ms=6000 --progress 0)
done_kills=0
attempts=0
while (( done_kills < kills )); do
  attempts=$((attempts + 1))
  (( attempts <= kills * 4 )) || fail "could not land $kills kills before the run finished"
  before=$(sql 'SELECT count(*) FROM events')
  (( before < events )) || break
  "$CONVDIAG" run "${run_opts[@]}" > /dev/null 2>>"$T_WORK/run.err" &
  pid=$!
  T_PIDS=$pid
  # Wait until this run has stored something, then kill it at a random moment after.
  for _ in $(seq 200); do
    [[ $(sql 'SELECT count(*) FROM events') -gt $before ]] && break
    sleep 0.05
  done
  sleep "0.$(( RANDOM % 6 ))$(( RANDOM % 10 ))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  T_PIDS=
  after=$(sql 'SELECT count(*) FROM events')
  if (( after < events )); then
    done_kills=$((done_kills + 1))
    ok "kill -9 #$done_kills with $after of $events events stored"
  fi
done
(( done_kills >= 5 )) || fail "only $done_kills kills landed mid-run"

"$CONVDIAG" run "${run_opts[@]}" --until-caught-up > "$T_WORK/final.out"
cat "$T_WORK/final.out"
sql 'SELECT event_id FROM events ORDER BY event_id' > "$T_WORK/stored_ids"
assert_eq "$(wc -l < "$T_WORK/stored_ids")" "$events" "events stored"
cmp -s "$T_WORK/expected_ids" "$T_WORK/stored_ids" || fail "stored eventIds differ from produced ones"
ok "every produced eventId stored exactly once"
# The outbox is written in the same transactions: each event named there once.
sql 'SELECT unnest(event_ids) FROM export_outbox ORDER BY 1' > "$T_WORK/outbox_ids"
cmp -s "$T_WORK/expected_ids" "$T_WORK/outbox_ids" ||
  fail "the export outbox does not name every stored event exactly once ($(wc -l < "$T_WORK/outbox_ids") names)"
ok "every stored event named once in the export outbox"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" 0 "dead letters"
echo "1 passed, 0 failed"
