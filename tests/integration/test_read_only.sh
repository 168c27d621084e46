#!/usr/bin/env bash
# The database turns read-only in the middle of a run, as after a failover
# (default_transaction_read_only, and the sessions cut): every write fails
# with SQLSTATE 25006.  convdiag treats it as PostgreSQL being away: it
# pauses and retries, /readyz says why, it stays alive, and once the
# database takes writes again it resumes by itself; every event is stored
# exactly once.  Then a partition it needs is locked by someone else for
# longer than its lock timeout: that is waited out, not reported as an
# outage.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init read_only 4

events=40000
# Half now, half streaming in while the database is read-only.
"$CONVDIAG" simulate --seed 61 --start "$SIM_START" --events $((events / 2)) --progress 0 >/dev/null
cut_sessions() {
  super_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND application_name LIKE 'convdiag%'" >/dev/null
}
run_start ro --set batch.max.events=500
wait_for 30 "first events stored" stored_at_least 1 >/dev/null
super_sql "ALTER DATABASE \"$T_DB\" SET default_transaction_read_only = on"
cut_sessions
"$CONVDIAG" simulate --seed 63 --start 2026-11-20T10:00:00.000Z --events $((events / 2)) \
  --rate 4000 --progress 0 >/dev/null &
producer=$!
says_read_only() { not_ready_for postgres && [[ $(probe readyz) == *"read-only"* ]]; }
wait_for 30 "readiness to tell PostgreSQL is read-only" says_read_only >/dev/null || { probe readyz; tail -5 "$RUN_ERR"; exit 1; }
ok "read-only database: not ready, $(probe readyz)"
sleep 3
kill -0 "$RUN_PID" 2>/dev/null || fail "convdiag run exited on a read-only database: $(tail -5 "$RUN_ERR")"
[[ $(probe healthz) == "200 "* ]] || fail "not alive while the database is read-only"
wait "$producer"
super_sql "SET TRANSACTION READ WRITE; ALTER DATABASE \"$T_DB\" RESET default_transaction_read_only"
ok "the database takes writes again"
wait_for 120 "every event stored" stored_at_least "$events" >/dev/null
wait_for 30 "ready again" ready >/dev/null
grep -q "PostgreSQL is back" "$RUN_ERR" || fail "no recovery logged: $(tail -3 "$RUN_ERR")"
exactly_once "$events"

# A partition locked by an analyst's long transaction: the event of a new
# day waits (its partition cannot be made within the lock timeout), but
# PostgreSQL is there, so readiness holds and no outage is logged.
outages=$(grep -c "PostgreSQL unavailable" "$RUN_ERR" || true)
psql -X -q -v ON_ERROR_STOP=1 <<SQL > "$T_WORK/lock.out" 2>&1 &
BEGIN;
LOCK TABLE events IN ACCESS SHARE MODE;
SELECT pg_sleep(8);
COMMIT;
SQL
locker=$!
T_PIDS="${T_PIDS:-} $locker"
sleep 1
"$CONVDIAG" simulate --seed 62 --start 2026-11-17T08:00:00.000Z --events 100 --progress 0 >/dev/null
sleep 4
assert_eq "$(sql "SELECT count(*) FROM events WHERE event_time < '2026-11-18'")" 0 \
  "events of the locked-out day stored while the lock is held"
[[ $(probe readyz) == "200 "* ]] || fail "not ready while a partition lock waits: $(probe readyz)"
assert_eq "$(grep -c "PostgreSQL unavailable" "$RUN_ERR" || true)" "$outages" \
  "outages logged while waiting for a lock"
wait "$locker"
wait_for 60 "the new day's events stored" stored_at_least $((events + 100)) >/dev/null
ok "a lock not granted in time waited out without an outage"
run_stop 15
exactly_once $((events + 100))
echo "1 passed, 0 failed"
