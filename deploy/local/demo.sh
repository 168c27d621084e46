#!/usr/bin/env bash
# The main job end to end on a local stack: installs what it needs, builds,
# starts PostgreSQL and Kafka on 127.0.0.1, produces sample conversations,
# runs the pipeline until it has caught up, and shows what was stored and
# what was exported to the local ingestion emulator (its page shows the traces).
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
"$here/emulator.sh" start
"$here/kafka.sh" topic "$CONVDIAG_KAFKA_TOPIC" 4

echo "== migrate"
"$convdiag" migrate
echo "== simulate $conversations conversations"
# Conversations of the last hour: the service takes traces up to 48 h old and 2 h ahead.
"$convdiag" simulate --conversations "$conversations" --seed "${CD_DEMO_SEED:-$RANDOM}" --disorder \
  --start "$(date -u -d '-60 minutes' +%Y-%m-%dT%H:%M:%S.000Z)"
echo "== run until caught up (and exported)"
"$convdiag" run --until-caught-up

q() { psql -X -P pager=off -c "$1"; }
echo "== what was stored"
q "SELECT (SELECT count(*) FROM events) AS events,
          (SELECT count(*) FROM conversations) AS conversations,
          (SELECT count(*) FROM scenario_runs) AS scenario_runs,
          (SELECT count(*) FROM dead_letters) AS dead_letters"
q "SELECT category, scenario,
          count(*) FILTER (WHERE state = 'completed') AS completed,
          count(*) FILTER (WHERE state = 'failed') AS failed,
          count(*) FILTER (WHERE state = 'open') AS open,
          count(*) FILTER (WHERE state = 'unpaired') AS unpaired,
          round((percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) / 1000.0)::numeric, 1) AS p50_s,
          round((percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms) / 1000.0)::numeric, 1) AS p90_s
     FROM scenario_runs GROUP BY category, scenario ORDER BY category, scenario"
q "SELECT coalesce(outcome, '(ongoing)') AS outcome, count(*) AS conversations
     FROM conversations GROUP BY 1 ORDER BY 2 DESC"
q "SELECT channel_type, count(*) AS conversations FROM conversations GROUP BY 1 ORDER BY 2 DESC"
lwi=$(psql -X -A -t -c "SELECT live_work_item_id FROM events
                         WHERE scenario = 'AgentRejected' ORDER BY event_time DESC LIMIT 1")
echo "== one conversation's timeline: convdiag history $lwi"
"$convdiag" history "$lwi"
echo "== messages that were not events: convdiag dead-letters list --limit 5 (show ID, replay)"
q "SELECT reason, count(*) FROM dead_letters GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
"$convdiag" dead-letters list --limit 5
echo "== exported to Application Insights (the local emulator)"
q "SELECT * FROM export_backlog"
curl -sf "http://127.0.0.1:$CD_EMULATOR_PORT/api/stats"; echo
echo "demo: open http://127.0.0.1:$CD_EMULATOR_PORT/#conversation=$lwi to see that conversation's traces"
echo "demo: the stack is still up (. deploy/local/env.sh; psql); stop it with deploy/local/stack.sh down"
