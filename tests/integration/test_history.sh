#!/usr/bin/env bash
# convdiag history against a simulated dataset: each timeline is checked
# against what the test computes itself from the generated events.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init history 4

sim=(--seed 8 --start "$SIM_START" --conversations 300)
"$CONVDIAG" simulate "${sim[@]}" --dry-run > "$T_WORK/events.jsonl" 2>/dev/null
"$CONVDIAG" simulate "${sim[@]}" >/dev/null
"$CONVDIAG" run --until-caught-up >/dev/null

# A few conversations of different shapes: traced, with a transactionId, neither.
mapfile -t lwis < <(python3 - "$T_WORK/events.jsonl" <<'PY'
import json, sys
first = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    first.setdefault(e["liveWorkItemId"], e)
kinds = {}
for lwi, e in first.items():
    kind = "traced" if e.get("traceparent") else "transaction" if e.get("transactionId") else "plain"
    kinds.setdefault(kind, lwi)
print("\n".join(kinds.values()))
PY
)
[[ ${#lwis[@]} -eq 3 ]] || fail "the dataset lacks a traced, a transactionId or a plain conversation"

for lwi in "${lwis[@]}"; do
  "$CONVDIAG" history --json "$lwi" > "$T_WORK/history.json"
  python3 - "$T_WORK/events.jsonl" "$T_WORK/history.json" "$lwi" <<'PY'
import json, sys
events = [e for e in map(json.loads, open(sys.argv[1])) if e["liveWorkItemId"] == sys.argv[3]]
rows = json.load(open(sys.argv[2]))
events.sort(key=lambda e: e["timestamp"])  # simulated timestamps are all UTC, 3 digits

CATEGORY = {s: c for c, names in {
    "ConversationInitiation": "ConversationInitialized CustomerIdentified",
    "VirtualAgentInteraction": "VirtualAgentAssigned ConversationEndedByVirtualAgent VirtualAgentEscalatedToHumanAgent",
    "Routing": "DemandClassification QueueAssignment",
    "HumanAgentInteraction": "AgentAccepted AgentRejected AgentAcceptanceTimedOut AgentRejoined AgentSelfAssignment",
    "ConversationCompletion": "ConversationEndedByCustomer ConversationEndedByAgent AgentSessionClosed "
                              "ConversationAbandonedByCustomer ConversationForceClosedBySupervisor ConversationClosed",
}.items() for s in names.split()}

def trace_id(e):
    tp = e.get("traceparent")
    return tp.split("-")[1] if tp else None

conv_op = trace_id(events[0]) or events[0].get("transactionId") or sys.argv[3].replace("-", "")
open_starts, expect = {}, []
for e in events:
    dur = None
    if e["status"] == "Started":
        open_starts.setdefault(e["scenario"], []).append(e)
    else:
        start = open_starts.get(e["scenario"], []).pop(0)
        if "durationMs" in e:
            dur = e["durationMs"]
        else:
            from datetime import datetime
            f = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))
            dur = int((f(e["timestamp"]) - f(start["timestamp"])).total_seconds() * 1000)
    dims = {"organizationId": e["organizationId"], "LiveWorkItemID": e["liveWorkItemId"],
            "ChannelType": e["channelType"], "Category": CATEGORY[e["scenario"]],
            "powerplatform.analytics.scenario": "ConversationDiagnosticsScenario",
            "powerplatform.analytics.subscenario": e["scenario"],
            "powerplatform.analytics.resource.id": e["liveWorkItemId"],
            "powerplatform.analytics.resource.organization.id": e["organizationId"],
            "omnichannel.channel.type": e["channelType"],
            # Export is at least once: each trace names its event.
            "convdiag.eventId": e["eventId"]}
    if dur is not None: dims["Duration"] = str(dur)
    if e.get("participantType"): dims["ParticipantType"] = e["participantType"]
    if e.get("failureReason"): dims["failureReason"] = e["failureReason"]
    for k, v in (e.get("attributes") or {}).items():
        dims.setdefault(k, json.dumps(v) if isinstance(v, bool) else str(v))
    expect.append({"timestamp": e["timestamp"], "message": "Scenario" + e["status"],
                   "operation_Name": e["scenario"], "operation_Id": trace_id(e) or conv_op,
                   "operation_ParentId": e["liveWorkItemId"], "session_Id": e.get("sessionId"),
                   "user_Id": e.get("userId") or "0", "severityLevel": 0, "itemType": "trace",
                   "customDimensions": dims})
if len(rows) != len(expect):
    sys.exit(f"FAIL: {sys.argv[3]}: {len(rows)} rows, expected {len(expect)}")
for i, (got, want) in enumerate(zip(rows, expect)):
    if got != want:
        diff = {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}
        sys.exit(f"FAIL: {sys.argv[3]} row {i}: {diff}")
print(f"ok: history of {sys.argv[3]}: {len(rows)} entries as computed from the events")
PY
done

out=$("$CONVDIAG" history "${lwis[0]}")
grep -q "^timestamp \[UTC\] *message *operation_Name" <<< "$out" || fail "table header: $out"
grep -q "($(grep -c "\"${lwis[0]}\"" "$T_WORK/events.jsonl") entries)" <<< "$out" || fail "table count: $out"
ok "table output"
# The analyst role reads everything and changes nothing.
analyst="cdtest_analyst_$$"
admin_sql "CREATE ROLE $analyst LOGIN PASSWORD 'analyst' IN ROLE convdiag_analyst"
as_analyst() { PGUSER=$analyst PGPASSWORD=analyst psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
assert_eq "$(as_analyst "SELECT count(*) FROM conversation_timeline('${lwis[0]}')")" \
  "$(grep -c "\"${lwis[0]}\"" "$T_WORK/events.jsonl")" "timeline rows read by an analyst"
as_analyst "SELECT count(*) FROM events, conversations, scenario_runs, dead_letters LIMIT 1" >/dev/null
if as_analyst "DELETE FROM events" 2>/dev/null; then fail "an analyst could delete events"; fi
ok "analyst cannot change events"
PGDATABASE=$T_DB admin_sql "DROP OWNED BY $analyst" 2>/dev/null || true
admin_sql "DROP ROLE $analyst"

rc=0
"$CONVDIAG" history no-such-conversation 2> "$T_WORK/err" || rc=$?
assert_eq "$rc" 1 "exit code for an unknown conversation"
grep -q "no conversation 'no-such-conversation'" "$T_WORK/err" || fail "message: $(cat "$T_WORK/err")"
rc=0
"$CONVDIAG" history 2> "$T_WORK/err" || rc=$?
assert_eq "$rc" 2 "exit code without a conversation"
echo "1 passed, 0 failed"
