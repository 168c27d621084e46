# shellcheck shell=bash
# Shared by the stack's scripts whose daemon keeps a pid file (emulator.sh,
# kafka.sh, toxiproxy.sh). The sourcing script defines log() and running()
# (alive, and really its daemon: a pid can be reused) first.

# daemon_stop PIDFILE SECONDS: SIGTERM, then SIGKILL if it is still running
# after SECONDS; the pid file goes either way.
daemon_stop() {
  local pidfile=$1 limit=$2 p
  if ! running; then log "not running"; rm -f "$pidfile"; return 0; fi
  p="$(cat "$pidfile")"
  log "stopping pid $p"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq $((limit * 10))); do
    running || { rm -f "$pidfile"; log "stopped"; return 0; }
    sleep 0.1
  done
  log "no clean exit after $limit s, killing"
  kill -KILL "$p" 2>/dev/null || true
  rm -f "$pidfile"
}
