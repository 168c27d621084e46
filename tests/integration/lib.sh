# shellcheck shell=bash
# Shared by the integration tests: each test gets its own Kafka topic, consumer
# group and PostgreSQL database on the local stack (deploy/local), so tests can
# run side by side and leave nothing behind but their topic.
set -euo pipefail

: "${CD_SOURCE_ROOT:?set by meson: the source tree}"
: "${CONVDIAG:?set by meson: the convdiag binary}"
# shellcheck source=../../deploy/local/env.sh
. "$CD_SOURCE_ROOT/deploy/local/env.sh"

T_FAILED=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
  if [[ "$1" != "$2" ]]; then fail "$3: expected '$2', got '$1'"; fi
  ok "$3 = $1"
}

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# The admin connection for creating and dropping the test database.
admin_sql() { PGDATABASE=postgres psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# DROP DATABASE ... WITH (FORCE) cannot end an autovacuum worker that is
# still on the database; it is gone within moments, so try again.
drop_db() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    admin_sql "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" 2>/dev/null && return 0
    sleep 0.5
  done
  admin_sql "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"
}

t_cleanup() {
  local rc=$?
  set +e
  [[ -n "${T_PIDS:-}" ]] && kill -9 $T_PIDS 2>/dev/null
  if [[ -n "${T_DB:-}" ]]; then drop_db "$T_DB"; fi
  exit "$rc"
}

# t_init NAME PARTITIONS: a fresh topic, group and migrated database.
t_init() {
  local name=$1 partitions=${2:-4}
  pg_isready -q -t 5 || fail "PostgreSQL is not reachable at $PGHOST:$PGPORT (run deploy/local/stack.sh up)"
  T_ID="${name}_$$_$RANDOM"
  T_DB="cdtest_$T_ID"
  T_TOPIC="cdtest-$T_ID"
  trap t_cleanup EXIT
  admin_sql "CREATE DATABASE \"$T_DB\""
  export PGDATABASE="$T_DB"
  export CONVDIAG_KAFKA_TOPIC="$T_TOPIC" CONVDIAG_KAFKA_GROUP_ID="cdtest-$T_ID"
  export CONVDIAG_LOG_LEVEL=${CONVDIAG_LOG_LEVEL:-warn}
  # The outbox is written as in production; only the export tests send it.
  export CONVDIAG_EXPORT_WORKERS=${CONVDIAG_EXPORT_WORKERS:-0}
  "$CD_SOURCE_ROOT/deploy/local/kafka.sh" topic "$T_TOPIC" "$partitions" >/dev/null
  "$CONVDIAG" migrate >/dev/null
  T_WORK=$(mktemp -d)
  echo "test $name: topic $T_TOPIC, database $T_DB"
}

# A fixed start time keeps simulated events identical between the producer and
# the expectation computed from --dry-run.
SIM_START=2026-11-20T08:00:00.000Z
