#!/usr/bin/env bash
# The whole local stack: PostgreSQL, Kafka, Toxiproxy in front of both (for
# the fault tests) and, once built, the ingestion emulator, on 127.0.0.1.
# Usage: stack.sh up|down|status   (CD_SKIP_INSTALL=1 skips install.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR
. "$here/env.sh"

case "${1:-}" in
  up)
    if [[ "${CD_SKIP_INSTALL:-0}" != 1 ]]; then "$here/install.sh"; fi
    "$here/postgres.sh" start
    "$here/kafka.sh" start
    "$here/toxiproxy.sh" start
    emu="not built yet"
    if [[ -x "$here/../../build/services/emulator/convdiag-emulator" ]]; then
      "$here/emulator.sh" start
      emu="http://127.0.0.1:$CD_EMULATOR_PORT/"
    fi
    echo "stack: up; PostgreSQL 127.0.0.1:$CD_PG_PORT, Kafka $CONVDIAG_KAFKA_BROKERS, emulator $emu"
    echo "stack: Toxiproxy API http://127.0.0.1:$CD_TOXIPROXY_PORT; through it PostgreSQL" \
      "127.0.0.1:$CD_PG_PROXY_PORT, Kafka 127.0.0.1:$CD_KAFKA_PROXY_PORT"
    echo "stack: logs in $CD_STACK_DIR/logs; use it with: . $here/env.sh"
    ;;
  down)
    # Each is stopped even if another fails to stop.
    rc=0
    "$here/emulator.sh" stop || rc=1
    "$here/toxiproxy.sh" stop || rc=1
    "$here/kafka.sh" stop || rc=1
    "$here/postgres.sh" stop || rc=1
    exit "$rc"
    ;;
  status)
    rc=0
    "$here/postgres.sh" status || rc=1
    "$here/kafka.sh" status || rc=1
    "$here/toxiproxy.sh" status || rc=1
    exit "$rc"
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
