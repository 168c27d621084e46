#!/usr/bin/env bash
# The main job end to end on a local stack: installs what it needs, builds,
# starts PostgreSQL and Kafka on 127.0.0.1, produces sample conversations,
# runs the pipeline until it has caught up, and shows what was stored.
# Usage: demo.sh [CONVERSATIONS]   (default 500).  The stack stays up; stop it
# with deploy/local/stack.sh down.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR
. "$here/env.sh"
conversations=${1:-500}
convdiag="$root/build/services/convdiag/convdiag"
export CONVDIAG_KAFKA_TOPIC=${CONVDIAG_KAFKA_TOPIC:-conversation-events}

"$here/install.sh"
"$here/build.sh"
CD_SKIP_INSTALL=1 "$here/stack.sh" up
"$here/kafka.sh" topic "$CONVDIAG_KAFKA_TOPIC" 4

echo "== migrate"
"$convdiag" migrate
echo "== simulate $conversations conversations"
"$convdiag" simulate --conversations "$conversations" --seed "${CD_DEMO_SEED:-$RANDOM}"
echo "== run until caught up"
"$convdiag" run --until-caught-up

q() { psql -X -P pager=off -c "$1"; }
echo "== what was stored"
q "SELECT count(*) AS events, count(DISTINCT live_work_item_id) AS conversations,
          min(event_time) AS first_event, max(event_time) AS last_event FROM events"
q "SELECT category, scenario,
          count(*) FILTER (WHERE status = 'Started') AS started,
          count(*) FILTER (WHERE status = 'Completed') AS completed,
          count(*) FILTER (WHERE status = 'Failed') AS failed,
          round(avg(duration_ms) / 1000.0, 1) AS avg_duration_s
     FROM events GROUP BY category, scenario ORDER BY category, scenario"
q "SELECT channel_type, count(DISTINCT live_work_item_id) AS conversations
     FROM events GROUP BY channel_type ORDER BY 2 DESC"
lwi=$(psql -X -A -t -c "SELECT live_work_item_id FROM events
                         WHERE scenario = 'AgentRejected' ORDER BY event_time DESC LIMIT 1")
echo "== one conversation's timeline ($lwi)"
q "SELECT to_char(event_time, 'HH24:MI:SS.MS') AS time, scenario, status, participant_type,
          duration_ms, failure_reason
     FROM events WHERE live_work_item_id = '$lwi' ORDER BY event_time, status DESC"
q "SELECT count(*) AS dead_letters FROM dead_letters"
echo "demo: the stack is still up (. deploy/local/env.sh; psql); stop it with deploy/local/stack.sh down"
