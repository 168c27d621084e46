#!/usr/bin/env bash
# PostgreSQL goes down in the middle of a run: consumption pauses, the process
# stays up (and says so: alive, not ready, postgres_up 0), and once PostgreSQL
# is back it resumes by itself; every event ends up stored exactly once, as
# the metrics count them too.  Stops the shared PostgreSQL: runs alone.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init pg_outage 4

pg_up() { "$CD_SOURCE_ROOT/deploy/local/postgres.sh" start >/dev/null; }
trap 'pg_up; t_cleanup' EXIT

sim=(--seed 11 --start "$SIM_START" --events 40000)
"$CONVDIAG" simulate "${sim[@]}" --progress 0 >/dev/null

CONVDIAG_LOG_LEVEL=info CONVDIAG_METRICS_LISTEN=127.0.0.1:0 "$CONVDIAG" run \
  --set batch.max.events=200 --progress 1 > "$T_WORK/run.out" 2> "$T_WORK/run.err" &
pid=$!
T_PIDS=$pid
for _ in $(seq 200); do
  [[ $(sql 'SELECT count(*) FROM events') -gt 0 ]] && break
  sleep 0.05
done
url=$(grep -o 'metrics and probes on http://[^/]*/' "$T_WORK/run.err" | head -n 1 | sed 's/.* on //')
[[ -n $url ]] || fail "no metrics address logged: $(tail -5 "$T_WORK/run.err")"
# probe PATH: "STATUS BODY"
probe() { curl -s -o "$T_WORK/probe" -w '%{http_code}' "$url$1"; echo " $(cat "$T_WORK/probe")"; }
metric() { curl -s "${url}metrics" | sed -n "s/^$1 //p"; }
[[ $(probe readyz) == "200 "*'"status": "ready"'* ]] || fail "not ready while running: $(probe readyz)"
[[ $(probe healthz) == "200 "*'"status": "alive"'* ]] || fail "not alive while running: $(probe healthz)"
ok "ready and alive while running ($url)"
"$CD_SOURCE_ROOT/deploy/local/postgres.sh" stop >/dev/null
ok "PostgreSQL stopped mid-run"
sleep 4
kill -0 "$pid" 2>/dev/null || fail "convdiag run exited while PostgreSQL was down: $(tail -5 "$T_WORK/run.err")"
grep -q "PostgreSQL unavailable, consumption paused" "$T_WORK/run.err" ||
  fail "no pause logged: $(tail -5 "$T_WORK/run.err")"
ok "consumer alive and paused"
r=$(probe readyz)
[[ $r == "503 "*'"postgres": {"up": false, "why": '* ]] || fail "readiness during the outage: $r"
[[ $(probe healthz) == "200 "*'"status": "alive"'* ]] || fail "liveness during the outage: $(probe healthz)"
assert_eq "$(metric convdiag_postgres_up) $(metric convdiag_consumer_paused)" "0 1" \
  "convdiag_postgres_up and convdiag_consumer_paused during the outage"
pg_up
ok "PostgreSQL started again"

for _ in $(seq 600); do
  [[ $(sql 'SELECT count(*) FROM events') -ge 40000 ]] && break
  sleep 0.1
done
grep -q "PostgreSQL is back, consumption resumed" "$T_WORK/run.err" ||
  fail "no resume logged: $(tail -5 "$T_WORK/run.err")"
[[ $(probe readyz) == "200 "*'"status": "ready"'* ]] || fail "not ready after the outage: $(probe readyz)"
assert_eq "$(metric convdiag_postgres_up) $(metric convdiag_consumer_paused)" "1 0" \
  "convdiag_postgres_up and convdiag_consumer_paused after the outage"
assert_eq "$(metric convdiag_events_stored_total)" 40000 "convdiag_events_stored_total"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
T_PIDS=
assert_eq "$rc" 0 "exit code after SIGTERM"
assert_eq "$(sql 'SELECT count(*) FROM events')" 40000 "events stored"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" 0 "dead letters"
echo "1 passed, 0 failed"
