#!/usr/bin/env bash
# Toxiproxy, a TCP proxy that injects faults (latency, time-outs, resets,
# refusal), on 127.0.0.1, with two proxies for the integration tests:
# "postgres" (CD_PG_PROXY_PORT -> CD_PG_PORT) and "kafka" (CD_KAFKA_PROXY_PORT
# -> the broker's PROXIED listener, which advertises the proxy's port so that
# clients stay behind the proxy after the bootstrap).
# Tests add toxics through its API (tests/integration/lib.sh: tox_*).
# Usage: toxiproxy.sh start|stop|status|build | cli ARGS...  (toxiproxy-cli on this server)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR
. "$here/env.sh"
# shellcheck source-path=SCRIPTDIR
. "$here/daemon.sh"

# The version is kept in one place: here.
version=v2.12.0
module=github.com/Shopify/toxiproxy/v2
cache="$CD_CACHE_DIR/toxiproxy-$version"
bin="$cache/bin"
dir="$CD_STACK_DIR/toxiproxy"
logs="$CD_STACK_DIR/logs"
pidfile="$dir/toxiproxy.pid"
api="http://127.0.0.1:$CD_TOXIPROXY_PORT"

log() { echo "toxiproxy: $*"; }

# Built from the Go module proxy once, then taken from the cache; the marker
# is written last so an interrupted build is redone.
build() {
  [[ -f "$cache/.complete" ]] && return 0
  local go
  go="$(command -v go || echo /usr/local/go/bin/go)"
  [[ -x "$go" ]] || { log "go not found (Go 1.23 or later builds Toxiproxy $version)"; exit 1; }
  log "building Toxiproxy $version into $bin (once; log in $cache/build.log)"
  rm -rf "$bin"
  mkdir -p "$cache"
  local t0=$SECONDS
  # Everything Go keeps (modules, build cache) stays under the cache dir;
  # -modcacherw lets a plain rm -rf remove it.
  if ! GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache" \
    GOBIN="$bin" GOTOOLCHAIN=local CGO_ENABLED=0 \
    "$go" install -modcacherw -trimpath -ldflags "-s -w -X $module.Version=${version#v}" \
    "$module/cmd/server@$version" "$module/cmd/cli@$version" >"$cache/build.log" 2>&1; then
    log "go install failed; see $cache/build.log:"; tail -n 30 "$cache/build.log"; exit 1
  fi
  mv "$bin/server" "$bin/toxiproxy-server"
  mv "$bin/cli" "$bin/toxiproxy-cli"
  touch "$cache/.complete"
  log "built in $((SECONDS - t0)) s"
}

pid() { [[ -f "$pidfile" ]] && cat "$pidfile"; }

# Alive and really our server (guards against a reused pid).
running() {
  local p
  p="$(pid)" || return 1
  grep -qs 'toxiproxy-server' "/proc/$p/cmdline"
}

answering() {
  local v
  v="$(curl -sf -m 2 "$api/version" 2>/dev/null)" && [[ "$v" == *'"version"'* ]]
}

# Creates the proxies, or keeps them (with their toxics) when they already
# are as asked; a changed port replaces one.
populate() {
  local body out
  body=$(cat <<JSON
[{"name": "postgres", "listen": "127.0.0.1:$CD_PG_PROXY_PORT", "upstream": "127.0.0.1:$CD_PG_PORT"},
 {"name": "kafka", "listen": "127.0.0.1:$CD_KAFKA_PROXY_PORT", "upstream": "127.0.0.1:$CD_KAFKA_PROXIED_PORT"}]
JSON
  )
  out=$(curl -sS -m 10 --fail-with-body -X POST -H 'Content-Type: application/json' \
    -d "$body" "$api/populate" 2>&1) || { log "creating the proxies failed: ${out//$'\n'/ }"; exit 1; }
}

# A proxy dials its upstream only when a client connects: say so now if a
# broker started before its PROXIED listener existed leaves it leading nowhere.
check_upstreams() {
  if ! (: <"/dev/tcp/127.0.0.1/$CD_KAFKA_PROXIED_PORT") 2>/dev/null; then
    log "note: nothing listens on Kafka's proxied listener 127.0.0.1:$CD_KAFKA_PROXIED_PORT" \
      "(start Kafka, or restart it: kafka.sh stop && kafka.sh start)"
  fi
}

start() {
  if running; then
    answering || { log "pid $(pid) runs but $api does not answer; see $logs/toxiproxy.log"; exit 1; }
    log "already running (pid $(pid)) at $api"
  elif answering; then
    log "something else already answers at $api"; exit 1
  else
    build
    mkdir -p "$dir" "$logs"
    log "starting Toxiproxy $version at $api"
    # setsid: the server must outlive this script and the caller's terminal.
    LOG_LEVEL=warn setsid nohup "$bin/toxiproxy-server" -host 127.0.0.1 -port "$CD_TOXIPROXY_PORT" \
      >>"$logs/toxiproxy.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    local deadline=$((SECONDS + 20))
    until answering; do
      if ! running || ((SECONDS >= deadline)); then
        log "did not come up; last lines of $logs/toxiproxy.log:"
        tail -n 20 "$logs/toxiproxy.log" 2>/dev/null || true
        exit 1
      fi
      sleep 0.1
    done
  fi
  populate
  check_upstreams
  log "up (pid $(pid)); proxies postgres 127.0.0.1:$CD_PG_PROXY_PORT -> 127.0.0.1:$CD_PG_PORT," \
    "kafka 127.0.0.1:$CD_KAFKA_PROXY_PORT -> 127.0.0.1:$CD_KAFKA_PROXIED_PORT; log in $logs/toxiproxy.log"
}

stop() { daemon_stop "$pidfile" 5; }

# Up, and both proxies there (a server restarted by hand has none).
status() {
  if ! running || ! answering; then log "down"; exit 1; fi
  log "up (pid $(pid)) at $api"
  curl -sf -m 5 "$api/proxies" | python3 -c '
import json, sys
proxies = json.load(sys.stdin)
for name, p in sorted(proxies.items()):
    toxics = ", ".join(t["name"] for t in p["toxics"]) or "no toxics"
    state = "enabled" if p["enabled"] else "disabled"
    print("toxiproxy:   %s %s -> %s, %s, %s" % (name, p["listen"], p["upstream"], state, toxics))
missing = {"postgres", "kafka"} - proxies.keys()
for name in sorted(missing):
    print("toxiproxy:   %s: missing (toxiproxy.sh start creates it)" % name)
sys.exit(1 if missing else 0)'
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  build) build ;;
  cli) shift; build; exec "$bin/toxiproxy-cli" --host "$api" "$@" ;;
  *) echo "usage: $0 start|stop|status|build|cli ARGS..." >&2; exit 2 ;;
esac
