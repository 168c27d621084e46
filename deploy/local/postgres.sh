#!/usr/bin/env bash
# A private PostgreSQL cluster (not the system service) on 127.0.0.1.
# Usage: postgres.sh start|stop|status|reset
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR
. "$here/env.sh"

dir="$CD_STACK_DIR/pg"
data="$dir/data"
sock="$dir/socket"
logfile="$CD_STACK_DIR/logs/postgres.log"

log() { echo "postgres: $*"; }

# Highest installed major version, e.g. /usr/lib/postgresql/15/bin.
bindir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)"
[[ -x "$bindir/pg_ctl" ]] || { log "no PostgreSQL server found (run deploy/local/install.sh)"; exit 1; }

# PostgreSQL refuses to run as root: run its tools as the 'postgres' user
# (from a directory it can read).
as_pg() {
  if ((EUID == 0)); then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

running() { [[ -f "$data/PG_VERSION" ]] && as_pg "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; }

init() {
  mkdir -p "$CD_STACK_DIR/logs" "$sock"
  chmod 755 "$CD_STACK_DIR" "$CD_STACK_DIR/logs"
  touch "$logfile"
  if ((EUID == 0)); then chown postgres: "$dir" "$sock" "$logfile"; fi
  as_pg test -x "$CD_STACK_DIR" || { log "$CD_STACK_DIR is not reachable by user postgres"; exit 1; }
  [[ -f "$data/PG_VERSION" ]] && return 0
  log "initdb in $data"
  as_pg "$bindir/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  # The superuser only over the socket; everyone else with a password.
  cat >"$data/pg_hba.conf" <<CONF
local all postgres trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
CONF
  echo "include 'convdiag.conf'" >>"$data/postgresql.conf"
  if ((EUID == 0)); then chown postgres: "$data/pg_hba.conf"; fi
}

# Rewritten on each start so a changed port or directory takes effect.
write_config() {
  cat >"$data/convdiag.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $CD_PG_PORT
unix_socket_directories = '$sock'
max_connections = 50
shared_buffers = 1GB
fsync = on
synchronous_commit = on
# Bulk ingest: the 1 GB default makes checkpoints (and full-page writes) every
# few seconds under load, which PostgreSQL itself warns about.
max_wal_size = 4GB
password_encryption = scram-sha-256
log_line_prefix = '%m [%p] %q%u@%d '
# bench/latency reads when each event's transaction committed; statements'
# costs are kept for EXPLAIN-driven work (both cheap).
track_commit_timestamp = on
shared_preload_libraries = 'pg_stat_statements'
CONF
  if ((EUID == 0)); then chown postgres: "$data/convdiag.conf"; fi
}

# The application role and database, created once; the password is re-set
# so that it always matches PGPASSWORD.
bootstrap() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$CD_PG_PORT" -U postgres -d postgres \
    -v u="$PGUSER" -v pw="$PGPASSWORD" -v db="$PGDATABASE" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'u')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
ALTER ROLE :"u" LOGIN CREATEROLE CREATEDB PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'u')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

start() {
  init
  if running; then
    log "already running on 127.0.0.1:$CD_PG_PORT"
  else
    write_config
    log "starting $("$bindir/postgres" --version) on 127.0.0.1:$CD_PG_PORT"
    as_pg "$bindir/pg_ctl" start -D "$data" -l "$logfile" -w -t 60 >/dev/null || {
      log "failed to start; last lines of $logfile:"; tail -n 30 "$logfile"; exit 1; }
  fi
  local deadline=$((SECONDS + 60))
  until pg_isready -q -h 127.0.0.1 -p "$CD_PG_PORT"; do
    ((SECONDS < deadline)) || { log "not ready after 60 s; see $logfile"; exit 1; }
    sleep 0.5
  done
  bootstrap
  log "up; database $PGDATABASE, role $PGUSER; log in $logfile"
}

stop() {
  if ! running; then log "not running"; return 0; fi
  as_pg "$bindir/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then log "up on 127.0.0.1:$CD_PG_PORT"; else log "down"; exit 1; fi ;;
  reset) stop; rm -rf "$dir"; log "data removed" ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
