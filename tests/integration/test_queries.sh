#!/usr/bin/env bash
# docs/queries.md cannot rot: every ```sql block in it runs against a
# simulated dataset as a member of convdiag_analyst, with the psql variables
# the page documents.  And the schema documents itself: every table, view,
# column and function in schema public has a COMMENT.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init queries 4

analyst="cdtest_analyst_$$"
# The role belongs to the cluster: dropped on the way out, then lib.sh's cleanup
# with the test's exit status.
cleanup() {
  local rc=$?
  set +e
  admin_sql "DROP ROLE IF EXISTS $analyst" 2>/dev/null
  (exit "$rc")
  t_cleanup
}
trap cleanup EXIT
admin_sql "CREATE ROLE $analyst LOGIN PASSWORD 'analyst' IN ROLE convdiag_analyst"

# Cut short and with malformed messages: open and stale runs, dead letters.
sim=(--seed 23 --start "$SIM_START" --events 4000 --malformed 0.01 --aliases 0.1 --progress 0)
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
"$CONVDIAG" run --until-caught-up >/dev/null

# Values from the dataset for the page's variables.
lwi=$(sql "SELECT live_work_item_id FROM conversations
            WHERE outcome IS NOT NULL ORDER BY live_work_item_id LIMIT 1")
vars=(
  lwi="$lwi"
  since=2026-11-20T00:00:00Z
  until=2026-11-21T00:00:00Z
  channel=voice
  organization="$(sql "SELECT organization_id FROM conversations WHERE live_work_item_id = '$lwi'")"
  scenario=QueueAssignment
  reason_class="$(sql "SELECT reason_class FROM dead_letters_by_reason() LIMIT 1")"
  operation_id="$(sql "SELECT operation_id FROM conversations WHERE live_work_item_id = '$lwi'")"
)
for v in "${vars[@]}"; do [[ -n ${v#*=} ]] || fail "no value in the dataset for ${v%%=*}"; done

# The blocks, one file each, and the variables: those the page documents in
# its table, those the blocks use, and those this test sets must be the same.
python3 - "$CD_SOURCE_ROOT/docs/queries.md" "$T_WORK" "${vars[@]%%=*}" <<'PY'
import re, sys
page, work, given = open(sys.argv[1]).read(), sys.argv[2], set(sys.argv[3:])
blocks = re.findall(r"^```sql\n(.*?)^```", page, re.M | re.S)
if len(blocks) < 10:
    sys.exit(f"FAIL: only {len(blocks)} sql blocks in docs/queries.md")
documented = set(re.findall(r"^\| `(\w+)` \|", page, re.M))
used = {v for b in blocks for v in re.findall(r":'(\w+)'", b)}
for what, names in (("used but not documented", used - documented),
                    ("documented but never used", documented - used),
                    ("documented but not set by this test", documented - given)):
    if names:
        sys.exit(f"FAIL: psql variables {what}: {sorted(names)}")
for i, b in enumerate(blocks):
    open(f"{work}/query_{i:02d}.sql", "w").write(b)
print(f"ok: {len(blocks)} sql blocks, variables {sorted(used)} documented")
PY

psql_vars=()
for v in "${vars[@]}"; do psql_vars+=(-v "$v"); done
n=0 with_rows=0
for f in "$T_WORK"/query_*.sql; do
  if ! out=$(PGUSER=$analyst PGPASSWORD=analyst psql -X -A -t -q -v ON_ERROR_STOP=1 \
               "${psql_vars[@]}" -f "$f" 2>&1); then
    fail "query $(basename "$f") failed as $analyst: $out
$(cat "$f")"
  fi
  n=$((n + 1))
  [[ -n $out ]] && with_rows=$((with_rows + 1))
done
ok "$n queries of docs/queries.md ran as a convdiag_analyst member, $with_rows returned rows"
# Most should find something in this dataset; none finding anything would
# mean the variables or the data went wrong, not the queries.
(( with_rows * 4 >= n * 3 )) || fail "only $with_rows of $n queries returned rows"

# Every table, view, column and function of schema public says what it is
# (partitions share their parent's description; extensions document themselves).
missing=$(sql "
  WITH rel AS (
      SELECT c.oid, c.relname FROM pg_class AS c
       WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
         AND NOT c.relispartition
         AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))
  SELECT 'table or view ' || relname FROM rel AS r
   WHERE NOT EXISTS (SELECT 1 FROM pg_description AS d
                      WHERE d.classoid = 'pg_class'::regclass AND d.objoid = r.oid AND d.objsubid = 0)
  UNION ALL
  SELECT 'column ' || r.relname || '.' || a.attname FROM rel AS r
    JOIN pg_attribute AS a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE NOT EXISTS (SELECT 1 FROM pg_description AS d
                      WHERE d.classoid = 'pg_class'::regclass AND d.objoid = r.oid AND d.objsubid = a.attnum)
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure FROM pg_proc AS p
   WHERE p.pronamespace = 'public'::regnamespace
     AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
     AND NOT EXISTS (SELECT 1 FROM pg_description AS d
                      WHERE d.classoid = 'pg_proc'::regclass AND d.objoid = p.oid)
  ORDER BY 1")
[[ -z $missing ]] || fail "without a COMMENT:
$missing"
ok "$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace
            AND relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT relispartition") tables and views, their columns and $(sql "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace") functions have a COMMENT"
echo "1 passed, 0 failed"
