#!/usr/bin/env bash
# No statement of a batch reads a whole table or partition: the plan of
# every statement the writers run, as PostgreSQL chose it while they ran
# (auto_explain, into the server's log), has no Seq Scan.  Checked on tables never analyzed (they
# are created by the test and autovacuum is kept off them), then analyzed,
# with a stream that has replays, reorders and late events, and a restart
# in between, so that stored events and conversations are looked up.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init plans 4

log="$CD_STACK_DIR/logs/postgres.log"
[[ -r $log ]] || fail "the server's log $log is not readable here (a local stack is needed)"
# Every session of this database logs the plan of each statement it runs.
super_sql "ALTER DATABASE \"$T_DB\" SET session_preload_libraries = 'auto_explain'"
super_sql "ALTER DATABASE \"$T_DB\" SET auto_explain.log_min_duration = 0"
# Never analyzed: no table of the batch's statements gets statistics but
# from the test itself.
no_autovacuum() {
  super_sql "DO \$\$ DECLARE t regclass; BEGIN
    FOR t IN SELECT c.oid FROM pg_class AS c WHERE c.relnamespace = 'public'::regnamespace
                AND c.relkind = 'r' LOOP
      EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', t);
    END LOOP; END \$\$"
}
run_opts=(--progress 0 --set batch.max.events=300 --set ingest.writers=2)
produce() { "$CONVDIAG" simulate --seed "$1" --start "$2" --events "$3" --disorder --progress 0 >/dev/null; }
# One event first: its day's partition is made (and, empty, analyzed, as
# convdiag does with every partition it makes) before autovacuum is
# turned off for every table.
produce 10 "$SIM_START" 1
"$CONVDIAG" run "${run_opts[@]}" --until-caught-up >/dev/null
no_autovacuum
assert_eq "$(super_sql "SELECT count(*) FROM pg_stat_user_tables WHERE relname NOT LIKE 'events_%'
                     AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)")" 0 \
  "tables analyzed before the run"

start_line=$(($(wc -l < "$log") + 1))

# Fresh tables: a first run, a restart (its first batches look up stored
# events), all never analyzed; the second run keeps no state between
# batches, so the conversations its batches share are loaded from the tables.
produce 11 "$SIM_START" 20000
"$CONVDIAG" run "${run_opts[@]}" --until-caught-up > "$T_WORK/run1.out"
produce 12 2026-11-20T09:00:00.000Z 20000
"$CONVDIAG" run "${run_opts[@]}" --set ingest.state.cache.bytes=0 --until-caught-up \
  > "$T_WORK/run2.out"
assert_eq "$(super_sql "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN
                     ('conversations', 'scenario_runs') AND last_autoanalyze IS NOT NULL")" 0 \
  "state tables analyzed during the runs"
fresh_end=$(wc -l < "$log")
# Analyzed: the statistics of tables with rows.
super_sql "ANALYZE"
produce 13 2026-11-20T10:00:00.000Z 20000
"$CONVDIAG" run "${run_opts[@]}" --set ingest.state.cache.bytes=0 --until-caught-up \
  > "$T_WORK/run3.out"
end_line=$(wc -l < "$log")
cat "$T_WORK/run1.out" "$T_WORK/run2.out" "$T_WORK/run3.out"

sed -n "${start_line},${end_line}p" "$log" > "$T_WORK/plans.log"
python3 - "$T_WORK/plans.log" "$T_DB" $((fresh_end - start_line + 1)) <<'PY'
import re, sys
path, db, fresh_lines = sys.argv[1], sys.argv[2], int(sys.argv[3])
# An entry starts with the log line prefix ('%m [%p] %q%u@%d '); the lines
# of a plan that follow it have none.
head = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[\d+\] (\S*)@(\S*) ')
entries, cur = [], None
with open(path, errors='replace') as f:
    for n, line in enumerate(f, 1):
        m = head.match(line)
        if m:
            cur = {'db': m.group(2), 'text': line, 'fresh': n <= fresh_lines}
            entries.append(cur)
        elif cur is not None:
            cur['text'] += line
plans = [e for e in entries if e['db'] == db and 'plan:' in e['text'] and 'Query Text:' in e['text']]
# The writers' statements, by a phrase of each; the test's own are left out.
wanted = {
    'load_conversations': 'FROM conversations WHERE live_work_item_id = k.id',
    'load_runs': 'FROM scenario_runs WHERE live_work_item_id = k.id',
    'stored_event_ids': 'FROM events AS e WHERE e.event_id = k.id',
    'write_state': 'INSERT INTO conversations',
    'take_run_ids': 'pg_get_serial_sequence',
    'sweep_stale': 'UPDATE scenario_runs AS r SET stale = true',
}
seen = {(name, fresh): 0 for name in wanted for fresh in (True, False)}
bad = []
for e in plans:
    text = e['text']
    names = [n for n, phrase in wanted.items() if phrase in text]
    for n in names:
        seen[(n, e['fresh'])] += 1
    if not names:
        continue
    for scan in re.findall(r'Seq Scan on (\S+)', text):
        bad.append((names[0], scan, text))
for name, scan, text in bad[:3]:
    print(f"FAIL: {name} scans all of {scan}:\n{text}", file=sys.stderr)
if bad:
    sys.exit(f"FAIL: {len(bad)} plans of batch statements read a whole table or partition")
# The check saw every statement, on fresh tables and on analyzed ones.
missing = [f"{n} ({'fresh' if fr else 'analyzed'})" for (n, fr), c in seen.items() if c == 0]
if missing:
    sys.exit("FAIL: no plan logged for " + ", ".join(missing))
total = sum(seen.values())
print(f"ok: {total} plans of the writers' statements, none reads a whole table "
      f"({sum(c for (n, fr), c in seen.items() if fr)} on never-analyzed tables)")
for (n, fr), c in sorted(seen.items()):
    print(f"ok:   {n} {'fresh' if fr else 'analyzed'}: {c}")
PY
echo "1 passed, 0 failed"
