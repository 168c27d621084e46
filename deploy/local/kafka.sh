#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1.
# Usage: kafka.sh start|stop|status|reset | topic NAME PARTITIONS
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR
. "$here/env.sh"
# shellcheck source-path=SCRIPTDIR
. "$here/daemon.sh"

# The version is kept in one place: the pom that gathers the jars.
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
jars="$CD_CACHE_DIR/kafka-$version"
libs="$jars/libs"
dir="$CD_STACK_DIR/kafka"
data="$dir/data"
logs="$CD_STACK_DIR/logs"
pidfile="$dir/kafka.pid"
bootstrap="127.0.0.1:$CD_KAFKA_PORT"

log() { echo "kafka: $*"; }

# Jars come from Maven Central once, then from the cache; the marker is
# written last so an interrupted download is redone.
fetch_jars() {
  [[ -f "$jars/.complete" ]] && return 0
  command -v mvn >/dev/null || { log "mvn not found (run deploy/local/install.sh)"; exit 1; }
  log "downloading Kafka $version jars into $libs"
  rm -rf "$libs"
  mkdir -p "$jars"
  mvn -q -B -f "$here/kafka/pom.xml" -Dkafka.libs.dir="$libs" \
    dependency:copy-dependencies >"$jars/maven.log" 2>&1 || {
    log "maven failed; see $jars/maven.log:"; tail -n 30 "$jars/maven.log"; exit 1; }
  touch "$jars/.complete"
}

# Short-lived Kafka tools: small heap, quiet logging.
kjava() {
  java -Xms64m -Xmx256m -XX:+UseSerialGC -cp "$libs/*" \
    -Dlog4j.configuration="file:$here/kafka/tools-log4j.properties" "$@"
}

pid() { [[ -f "$pidfile" ]] && cat "$pidfile"; }

# Alive and really our broker (guards against a reused pid).
running() {
  local p
  p="$(pid)" || return 1
  grep -qs 'kafka.Kafka' "/proc/$p/cmdline"
}

# Metadata listing at least one broker: the listener is up and serving.
answering() {
  local md
  md="$(kcat -b "$bootstrap" -L -J -m 3 2>/dev/null)" || return 1
  [[ "$md" == *'"brokers":[{'* ]]
}

# PROXIED is where Toxiproxy's "kafka" proxy leads (toxiproxy.sh). It
# advertises the proxy's port: clients that bootstrap through the proxy are
# sent back to it for every broker connection instead of around it.
write_config() {
  cat >"$dir/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CD_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$CD_KAFKA_PORT,PROXIED://127.0.0.1:$CD_KAFKA_PROXIED_PORT,CONTROLLER://127.0.0.1:$CD_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$CD_KAFKA_PORT,PROXIED://127.0.0.1:$CD_KAFKA_PROXY_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
CONF
}

start() {
  if running; then
    if answering; then log "already running (pid $(pid)) on $bootstrap"; return 0; fi
  elif answering; then
    log "something else already answers on $bootstrap"; exit 1
  else
    fetch_jars
    mkdir -p "$data" "$logs"
    write_config
    if [[ ! -f "$data/meta.properties" ]]; then
      log "formatting storage in $data"
      kjava kafka.tools.StorageTool format --ignore-formatted \
        -t "$(kjava kafka.tools.StorageTool random-uuid)" \
        -c "$dir/server.properties" >>"$logs/kafka.out" 2>&1
    fi
    log "starting Kafka $version on $bootstrap"
    # setsid: the broker must outlive this script and the caller's terminal.
    setsid nohup java -Xms256m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$here/kafka/log4j.properties" \
      -Dkafka.logs.dir="$logs" \
      -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
      >>"$logs/kafka.out" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  local deadline=$((SECONDS + 90))
  until answering; do
    if ! running || ((SECONDS >= deadline)); then
      log "broker did not come up; last lines of $logs/kafka-server.log and kafka.out:"
      tail -n 30 "$logs/kafka-server.log" "$logs/kafka.out" 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
  log "up (pid $(pid)); logs in $logs/kafka-server.log"
}

stop() { daemon_stop "$pidfile" 30; }

topic() {
  local name="${1:?topic NAME PARTITIONS}" parts="${2:?topic NAME PARTITIONS}"
  answering || { log "broker not up on $bootstrap (run: $0 start)"; exit 1; }
  kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running && answering; then log "up (pid $(pid)) on $bootstrap"; else log "down"; exit 1; fi ;;
  reset) stop; rm -rf "$dir"; log "data removed" ;;
  topic) shift; topic "$@" ;;
  *) echo "usage: $0 start|stop|status|reset|topic NAME PARTITIONS" >&2; exit 2 ;;
esac
