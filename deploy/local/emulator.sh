#!/usr/bin/env bash
# The local ingestion emulator (services/emulator): where `convdiag run` and
# `convdiag export` send traces when no connection string is set, and where a
# person watches them: http://127.0.0.1:28080/.
# Usage: emulator.sh start|stop|status   (needs a build: deploy/local/build.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR
. "$here/env.sh"
# shellcheck source-path=SCRIPTDIR
. "$here/daemon.sh"

bin="$root/build/services/emulator/convdiag-emulator"
dir="$CD_STACK_DIR/emulator"
pidfile="$dir/pid"
url="http://127.0.0.1:$CD_EMULATOR_PORT"

log() { echo "emulator: $*"; }
pid() { cat "$pidfile" 2>/dev/null || true; }
running() { local p; p=$(pid); [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; }

start() {
  if running; then log "already up (pid $(pid)) at $url/"; return 0; fi
  [[ -x "$bin" ]] || { log "$bin is not built (run deploy/local/build.sh)" >&2; exit 1; }
  mkdir -p "$dir" "$CD_STACK_DIR/logs"
  nohup "$bin" --listen "127.0.0.1:$CD_EMULATOR_PORT" --ikey "$CD_EMULATOR_IKEY" \
    >>"$CD_STACK_DIR/logs/emulator.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 50); do
    if curl -sf "$url/api/stats" >/dev/null 2>&1; then
      log "up (pid $(pid)) at $url/; logs in $CD_STACK_DIR/logs/emulator.log"
      return 0
    fi
    running || break
    sleep 0.1
  done
  log "did not start; see $CD_STACK_DIR/logs/emulator.log" >&2
  tail -5 "$CD_STACK_DIR/logs/emulator.log" >&2 || true
  exit 1
}

stop() { daemon_stop "$pidfile" 5; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then log "up (pid $(pid)) at $url/"; else log "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
