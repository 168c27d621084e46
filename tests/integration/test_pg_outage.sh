#!/usr/bin/env bash
# PostgreSQL goes down in the middle of a run: consumption pauses, the process
# stays up, and once PostgreSQL is back it resumes by itself; every event ends
# up stored exactly once.  Stops the shared PostgreSQL: runs alone.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init pg_outage 4

pg_up() { "$CD_SOURCE_ROOT/deploy/local/postgres.sh" start >/dev/null; }
trap 'pg_up; t_cleanup' EXIT

sim=(--seed 11 --start "$SIM_START" --events 40000)
"$CONVDIAG" simulate "${sim[@]}" --progress 0 >/dev/null

CONVDIAG_LOG_LEVEL=info "$CONVDIAG" run --set batch.max.events=200 --progress 1 \
  > "$T_WORK/run.out" 2> "$T_WORK/run.err" &
pid=$!
T_PIDS=$pid
for _ in $(seq 200); do
  [[ $(sql 'SELECT count(*) FROM events') -gt 0 ]] && break
  sleep 0.05
done
"$CD_SOURCE_ROOT/deploy/local/postgres.sh" stop >/dev/null
ok "PostgreSQL stopped mid-run"
sleep 4
kill -0 "$pid" 2>/dev/null || fail "convdiag run exited while PostgreSQL was down: $(tail -5 "$T_WORK/run.err")"
grep -q "PostgreSQL unavailable, consumption paused" "$T_WORK/run.err" ||
  fail "no pause logged: $(tail -5 "$T_WORK/run.err")"
ok "consumer alive and paused"
pg_up
ok "PostgreSQL started again"

for _ in $(seq 600); do
  [[ $(sql 'SELECT count(*) FROM events') -ge 40000 ]] && break
  sleep 0.1
done
grep -q "PostgreSQL is back, consumption resumed" "$T_WORK/run.err" ||
  fail "no resume logged: $(tail -5 "$T_WORK/run.err")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
T_PIDS=
assert_eq "$rc" 0 "exit code after SIGTERM"
assert_eq "$(sql 'SELECT count(*) FROM events')" 40000 "events stored"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" 0 "dead letters"
echo "1 passed, 0 failed"
