#!/usr/bin/env bash
# A row PostgreSQL refuses in a table other than events (here conversations,
# under a constraint added for the test) dead-letters the messages whose
# rows it is, with PostgreSQL's reason, and everything else of the batch is
# stored: the partition moves on.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init refused 1

sql "ALTER TABLE conversations ADD CONSTRAINT test_no_fax CHECK (channel_type <> 'fax')"
"$CONVDIAG" simulate --seed 91 --start "$SIM_START" --events 600 --dry-run 2>/dev/null > "$T_WORK/events"
# Three events of one conversation on a channel the constraint refuses, among the others.
python3 - "$T_WORK/events" <<'PY' > "$T_WORK/stream"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
fax = [json.dumps({"eventId": f"fax-{i}", "timestamp": f"2026-11-20T08:0{i}:00.000Z",
                   "organizationId": "62206a64-7414-46f3-b0b7-963a1ee4ff66",
                   "liveWorkItemId": "fax-conversation", "scenario": "ConversationInitialized",
                   "status": s, "channelType": "fax"})
       for i, s in enumerate(["Started", "Completed", "Started"])]
for n, line in enumerate(lines):
    print(line)
    if n % 200 == 100:
        print(fax.pop(0))
PY
kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -l "$T_WORK/stream"
"$CONVDIAG" run --until-caught-up --progress 0 --set batch.max.events=1000 > "$T_WORK/run.out" \
  2> "$T_WORK/run.err" || fail "the run failed: $(tail -3 "$T_WORK/run.err")"
cat "$T_WORK/run.out"
assert_eq "$(sql 'SELECT count(*) FROM events')" 600 "events stored"
assert_eq "$(sql "SELECT count(*) FROM events WHERE live_work_item_id = 'fax-conversation'")" 0 \
  "events of the refused conversation stored"
assert_eq "$(sql "SELECT string_agg(kafka_offset::text, ' ' ORDER BY kafka_offset) FROM dead_letters")" \
  "101 302 503" "dead letters, at the refused messages' offsets"
assert_eq "$(sql "SELECT count(*) FROM dead_letters
                   WHERE reason LIKE 'PostgreSQL refused the event: %test_no_fax%'")" 3 \
  "dead letters giving PostgreSQL's reason"
assert_eq "$(sql 'SELECT count(*) FROM conversations')" \
  "$(sql 'SELECT count(DISTINCT live_work_item_id) FROM events')" "conversations of the stored events"
echo "1 passed, 0 failed"
