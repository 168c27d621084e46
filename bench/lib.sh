# shellcheck shell=bash
# Shared by the benchmarks: what they measure of PostgreSQL, and the copy
# of events a baseline writes to.  Source after deploy/local/env.sh.

# CPU ticks (user + system) of this stack's PostgreSQL cluster: the
# postmaster, its live children (backends, checkpointer, WAL writer,
# autovacuum, ...) and, through the postmaster's count of its reaped
# children, those that have exited.  Only this cluster: other clusters may
# run on the machine.  pg_ticks fails unless bench_pg_init has found it.
bench_pg_init() {
  local data="$CD_STACK_DIR/pg/data"
  BENCH_POSTMASTER=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
  [[ -n "$BENCH_POSTMASTER" && "$(cat "/proc/$BENCH_POSTMASTER/comm" 2>/dev/null)" == postgres ]] ||
    { echo "bench: no postmaster for $data (is the stack's PostgreSQL local?)" >&2; return 1; }
}
pg_ticks() {
  local t p
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$BENCH_POSTMASTER/stat")
  for p in $(pgrep -P "$BENCH_POSTMASTER"); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# CHECKPOINT needs a superuser (or pg_checkpoint): the stack's postgres role
# over its socket when this user may use it, else the bench's role, else none.
checkpoint() {
  psql -X -q -h "$CD_STACK_DIR/pg/socket" -p "$CD_PG_PORT" -U postgres -d "${PGDATABASE:-postgres}" \
    -c CHECKPOINT 2>/dev/null || psql -X -q -c CHECKPOINT 2>/dev/null || true
}

# events_copy, as events (columns, keys, indexes), with a partition for each
# of events' days, same bounds; run again when events got new days.
mirror_partitions() {
  psql -X -q -c "SET client_min_messages = warning" \
    -c "CREATE TABLE IF NOT EXISTS events_copy (LIKE events INCLUDING ALL)
          PARTITION BY RANGE (event_time)" -c "DO \$\$ DECLARE p record; BEGIN
    FOR p IN SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
               FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'events'::regclass LOOP
      EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF events_copy %s',
                     replace(p.relname, 'events_', 'events_copy_'), p.bound);
    END LOOP; END \$\$"
}
