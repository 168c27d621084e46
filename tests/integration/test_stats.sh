#!/usr/bin/env bash
# convdiag stats and the SQL functions behind it, against a simulated dataset
# whose every summary this test computes itself from the generated messages:
# pairing, conversations, rates and percentiles redone in Python, not with
# the SQL under test.  Percentiles are percentile_disc on both sides (the
# smallest value whose cumulative share reaches the fraction), so they are
# compared exactly, as are counts and rates (numeric rounded to 4 decimals).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init stats 4

# Two days (the first run crosses midnight), with duplicates, aliases and
# malformed messages; --events cuts conversations short, so runs stay open
# and, the events being days old, are flagged stale.  No reordering: the
# Python pairing below follows arrival order.
disorder=(--duplicates 0.02 --aliases 0.1 --malformed 0.01 --progress 0)
sims=("--seed 41 --start 2026-11-19T23:40:00.000Z --events 4000"
      "--seed 42 --start $SIM_START --events 3000")
: > "$T_WORK/messages.jsonl"
for s in "${sims[@]}"; do
  # shellcheck disable=SC2086
  "$CONVDIAG" simulate $s "${disorder[@]}" --dry-run >> "$T_WORK/messages.jsonl" 2>/dev/null
  # shellcheck disable=SC2086
  "$CONVDIAG" simulate $s "${disorder[@]}" >/dev/null
done

# Dead letters whose values differ but whose reason class does not; the
# expected classes are the contract of dead_letter_reason_class().
mkdir "$T_WORK/crafted"
python3 - "$T_WORK/crafted" <<'PY'
import json, sys
base = {"eventId": "crafted", "timestamp": "2026-11-20T08:00:00.000Z",
        "organizationId": "62206a64-7414-46f3-b0b7-963a1ee4ff66", "liveWorkItemId": "crafted-lwi",
        "scenario": "QueueAssignment", "status": "Started", "channelType": "voice"}
def ev(**kw):
    return json.dumps({**base, **kw}).encode()
cases = [
    (ev(status="Finished"), "status: '...' is not one of Started, Completed, Failed"),
    (ev(organizationId="not-a-uuid"), "organizationId: '...' is not a UUID"),
    (ev(organizationId="x"), "organizationId: '...' is not a UUID"),
    (ev(timestamp="2026-11-20T08:00:00Z"),
     "timestamp: '...' needs at least 3 fractional digits (millisecond precision)"),
    (ev(timestamp="2026-11-21T09:30:00+01:00"),
     "timestamp: '...' needs at least 3 fractional digits (millisecond precision)"),
    (ev(eventId="e" * 130), "eventId: '...' is N characters, over the limit of 128"),
    (ev(eventId="f" * 200), "eventId: '...' is N characters, over the limit of 128"),
    (ev(failureReason="a" * 70000), "message is N bytes, over the limit of 65536"),
    (ev(failureReason="b" * 80000), "message is N bytes, over the limit of 65536"),
    (ev(channelType="Web Chat"), "channelType: '...' must be lower-case letters, digits, '_' or '-'"),
    (ev(channelType="it's chat"), "channelType: '...' must be lower-case letters, digits, '_' or '-'"),
    (b"[1,2]", "message is an array, not a JSON object"),
    (b'{"eventId": "x", "colour": "red"}', "unknown field (contract v1 has no such field)"),
]
classes = []
for i, (payload, cls) in enumerate(cases):
    open(f"{sys.argv[1]}/{i:02d}", "wb").write(payload)
    classes.append(cls)
json.dump(classes, open(f"{sys.argv[1]}/classes.json", "w"))
PY
kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -p 0 "$T_WORK"/crafted/[0-9]*

"$CONVDIAG" run --until-caught-up >/dev/null

# expect SINCE UNTIL CHANNEL: the stats document as computed from the messages.
expect() {
  python3 - "$T_WORK/messages.jsonl" "$T_WORK/crafted/classes.json" "$1" "$2" "$3" <<'PY'
import json, math, sys
from datetime import datetime, timezone
from decimal import Decimal, ROUND_HALF_UP

messages, classes_file, since_s, until_s, channel = sys.argv[1:6]
channel = channel or None
ms = lambda t: round(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)
since, until = ms(since_s), ms(until_s)
day = lambda t_ms: datetime.fromtimestamp(t_ms / 1000, timezone.utc).strftime("%Y-%m-%d")
iso = lambda t_ms: datetime.fromtimestamp(t_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

CATEGORY = {s: c for c, names in {
    "ConversationInitiation": "ConversationInitialized CustomerIdentified",
    "VirtualAgentInteraction": "VirtualAgentAssigned ConversationEndedByVirtualAgent VirtualAgentEscalatedToHumanAgent",
    "Routing": "DemandClassification QueueAssignment",
    "HumanAgentInteraction": "AgentAccepted AgentRejected AgentAcceptanceTimedOut AgentRejoined AgentSelfAssignment",
    "ConversationCompletion": "ConversationEndedByCustomer ConversationEndedByAgent AgentSessionClosed "
                              "ConversationAbandonedByCustomer ConversationForceClosedBySupervisor ConversationClosed",
}.items() for s in names.split()}
ALIAS = {a: c for c, names in {
    "ConversationInitialized": "CreateConversation ConversationCreated",
    "DemandClassification": "Classification", "QueueAssignment": "RTQ RouteToQueue",
    "AgentAccepted": "AgentAccept CSRAccepted", "AgentRejected": "AgentReject CSRRejected",
    "AgentAcceptanceTimedOut": "AgentTimeout CSRNotificationTimeout", "AgentRejoined": "CSRRejoined",
    "AgentSelfAssignment": "AgentPickAssignment CSRPickedConversation",
    "VirtualAgentAssigned": "CopilotAgentAssignedToConversation",
    "ConversationEndedByVirtualAgent": "BotChatEnd",
    "VirtualAgentEscalatedToHumanAgent": "BotEscalationToHuman CopilotAgentEscalationToCSR",
    "ConversationEndedByCustomer": "CustomerEndConversation CustomerEndedConversation",
    "ConversationEndedByAgent": "AgentEndConversation CSREndedConversation",
    "AgentSessionClosed": "AgentCloseSession CSRClosedSession",
    "ConversationAbandonedByCustomer": "CustomerDisconnect CustomerDisconnected",
    "ConversationForceClosedBySupervisor": "SupervisorForceCloseConversation SupervisorForceClosedConversation",
    "ConversationClosed": "ConversationClose",
}.items() for a in names.split()}
ENDINGS = {"ConversationEndedByCustomer", "ConversationEndedByAgent", "ConversationEndedByVirtualAgent",
           "ConversationAbandonedByCustomer", "ConversationForceClosedBySupervisor"}
FIELDS = ["eventId", "timestamp", "organizationId", "liveWorkItemId", "scenario", "status", "channelType",
          "participantType", "userId", "sessionId", "transactionId", "traceparent", "tracestate",
          "durationMs", "failureReason", "attributes"]
REQUIRED = FIELDS[:7]

def json_type(v):
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number",
            list: "an array", dict: "an object"}.get(type(v), "null")

# What the simulator breaks (truncation, wrong types, missing fields, status
# 'Done', bad UTF-8, unknown fields), told apart by our own reading.
def check(raw):
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "message is not valid UTF-8"
    except ValueError:
        return None, "message is not valid JSON"
    for k, v in obj.items():
        if k not in FIELDS:
            return None, "unknown field (contract v1 has no such field)"
        if k == "durationMs":
            if not isinstance(v, int):
                return None, f"durationMs: expected a number, got {json_type(v)}"
        elif k == "attributes":
            if not isinstance(v, dict):
                return None, f"attributes: expected an object, got {json_type(v)}"
        elif not isinstance(v, str):
            return None, f"{k}: expected a string, got {json_type(v)}"
        elif k == "status" and v not in ("Started", "Completed", "Failed"):
            return None, "status: '...' is not one of Started, Completed, Failed"
    for k in REQUIRED:
        if k not in obj:
            return None, f"{k}: required field is missing"
    return obj, None

dead = {}
for cls in json.load(open(classes_file)):
    dead[cls] = dead.get(cls, 0) + 1
seen, convs = set(), {}
for raw in open(messages, "rb").read().split(b"\n")[:-1]:
    e, why = check(raw)
    if why:
        dead[why] = dead.get(why, 0) + 1
        continue
    if e["eventId"] in seen:
        continue
    seen.add(e["eventId"])
    e["scenario"] = ALIAS.get(e["scenario"], e["scenario"])
    e["t"] = ms(e["timestamp"])
    c = convs.setdefault(e["liveWorkItemId"], {"channel": e["channelType"], "events": [], "runs": []})
    c["events"].append(e)
    # Pairing: an end closes the oldest open start of its scenario; a start
    # takes the oldest end still waiting for it (none without reordering).
    runs = [r for r in c["runs"] if r["scenario"] == e["scenario"]]
    if e["status"] == "Started":
        waiting = [r for r in runs if r["state"] == "unpaired" and r["end"] >= e["t"]]
        r = min(waiting, key=lambda r: r["end"]) if waiting else None
        if r:
            r["state"] = r["status"].lower()
        else:
            r = {"scenario": e["scenario"], "state": "open", "end": None, "status": None, "dur": None}
            c["runs"].append(r)
        r["start"] = e["t"]
    else:
        open_runs = [r for r in runs if r["state"] == "open"]
        r = min(open_runs, key=lambda r: r["start"]) if open_runs else None
        if not r:
            r = {"scenario": e["scenario"], "start": None}
            c["runs"].append(r)
        r.update(state=e["status"].lower() if r["start"] is not None else "unpaired",
                 end=e["t"], status=e["status"], source_dur=e.get("durationMs"))
    if r["state"] in ("completed", "failed", "unpaired"):
        r["dur"] = r["source_dur"] if r["source_dur"] is not None or r["state"] == "unpaired" \
            else max(r["end"] - r["start"], 0)

def rate(n, d):
    return None if d == 0 else (Decimal(n) / Decimal(d)).quantize(Decimal("0.0001"), ROUND_HALF_UP)

def pdisc(values, p):
    v = sorted(values)
    return v[max(math.ceil(p * len(v)), 1) - 1] if v else None

def wanted(c):
    return channel is None or c["channel"] == channel

inside = lambda t: t is not None and since <= t < until
out = {k: [] for k in ("scenario_runs", "abandonment", "agent_offers", "time_to_accept",
                       "stale_runs", "dead_letters")}

groups = {}
for c in filter(wanted, convs.values()):
    for r in c["runs"]:
        if inside(r["end"]):
            groups.setdefault((day(r["end"]), c["channel"], r["scenario"]), []).append(r)
for (d, ch, sc), rs in sorted(groups.items()):
    failed = sum(r["status"] == "Failed" for r in rs)
    durs = [r["dur"] for r in rs if r["dur"] is not None]
    out["scenario_runs"].append({"day": d, "channel_type": ch, "scenario": sc, "ended": len(rs),
        "completed": len(rs) - failed, "failed": failed, "failure_rate": rate(failed, len(rs)),
        "p50_ms": pdisc(durs, 0.5), "p90_ms": pdisc(durs, 0.9), "p99_ms": pdisc(durs, 0.99)})

groups = {}
for c in filter(wanted, convs.values()):
    first = min(e["t"] for e in c["events"])
    ends = sorted((e["t"], e["scenario"]) for e in c["events"]
                  if e["status"] != "Started" and e["scenario"] in ENDINGS)
    if inside(first):
        groups.setdefault((day(first), c["channel"]), []).append(ends[0][1] if ends else None)
for (d, ch), outcomes in sorted(groups.items()):
    ended = sum(o is not None for o in outcomes)
    abandoned = outcomes.count("ConversationAbandonedByCustomer")
    out["abandonment"].append({"day": d, "channel_type": ch, "conversations": len(outcomes),
        "ended": ended, "abandoned": abandoned, "abandonment_rate": rate(abandoned, ended)})

groups = {}
OFFERS = {"AgentAccepted": "accepted", "AgentRejected": "rejected", "AgentAcceptanceTimedOut": "timed_out"}
for c in filter(wanted, convs.values()):
    for e in c["events"]:
        if e["status"] == "Completed" and e["scenario"] in OFFERS and inside(e["t"]):
            g = groups.setdefault((day(e["t"]), c["channel"]), {"accepted": 0, "rejected": 0, "timed_out": 0})
            g[OFFERS[e["scenario"]]] += 1
for (d, ch), g in sorted(groups.items()):
    n = sum(g.values())
    out["agent_offers"].append({"day": d, "channel_type": ch, "offers": n, **g,
        "rejection_rate": rate(g["rejected"], n), "timeout_rate": rate(g["timed_out"], n)})

groups, per_conversation = {}, []
for lwi, c in convs.items():
    inits = [e["t"] for e in c["events"] if e["scenario"] == "ConversationInitialized" and e["status"] == "Started"]
    if not wanted(c) or not any(inside(t) for t in inits):
        continue
    init = min(t for t in inits if inside(t))
    accepts = [e["t"] for e in c["events"]
               if e["scenario"] == "AgentAccepted" and e["status"] == "Completed" and e["t"] >= init]
    if accepts:
        per_conversation.append((init, lwi, min(accepts) - init))
        groups.setdefault((day(init), c["channel"]), []).append(min(accepts) - init)
for (d, ch), v in sorted(groups.items()):
    out["time_to_accept"].append({"day": d, "channel_type": ch, "accepted": len(v),
        "p50_ms": pdisc(v, 0.5), "p90_ms": pdisc(v, 0.9), "p99_ms": pdisc(v, 0.99)})

groups = {}
for lwi, c in filter(lambda kv: wanted(kv[1]), convs.items()):
    for r in c["runs"]:
        if r["state"] == "open" and inside(r["start"]):  # the events are days old: all stale
            groups.setdefault(r["scenario"], []).append((r["start"], lwi))
for sc, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
    out["stale_runs"].append({"scenario": sc, "category": CATEGORY[sc], "stale_runs": len(v),
        "conversations": len({lwi for _, lwi in v}), "oldest_start_time": iso(min(v)[0]),
        "newest_start_time": iso(max(v)[0])})

# Dead letters are in the range by when they were stored: now.
now = datetime.now(timezone.utc).timestamp() * 1000
if since <= now < until:
    for cls, n in sorted(dead.items(), key=lambda kv: (-kv[1], kv[0])):
        out["dead_letters"].append({"reason_class": cls, "dead_letters": n})
out["time_to_accept_conversations"] = [{"live_work_item_id": l, "time_to_accept_ms": d}
                                       for _, l, d in sorted(per_conversation)]
print(json.dumps(out, default=str))
PY
}

# compare WHAT EXPECTED ACTUAL: the sections of EXPECTED, row for row, on the
# columns EXPECTED names (times compared as instants, rates as decimals).
compare() {
  python3 - "$@" <<'PY'
import json, sys
from datetime import datetime
from decimal import Decimal
what, want, got = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]), parse_float=Decimal)
def norm(k, v):
    if v is None:
        return None
    if k.endswith("_time") or k.endswith("_at"):
        return datetime.fromisoformat(v.replace("Z", "+00:00"))
    if k.endswith("_rate"):
        return Decimal(str(v))
    return v
for section, rows in want.items():
    if section not in got:
        continue
    if len(got[section]) != len(rows):
        sys.exit(f"FAIL: {what} {section}: {len(got[section])} rows, expected {len(rows)}: "
                 f"{got[section][:3]} vs {rows[:3]}")
    for i, (g, w) in enumerate(zip(got[section], rows)):
        diff = {k: (g.get(k), w[k]) for k in w if norm(k, g.get(k)) != norm(k, w[k])}
        if diff:
            sys.exit(f"FAIL: {what} {section} row {i} {w}: got/expected {diff}")
    print(f"ok: {what} {section}: {len(rows)} rows as computed from the messages")
PY
}

tomorrow=$(date -u -d tomorrow +%F)
expect 2026-11-19T00:00:00.000Z "${tomorrow}T00:00:00.000Z" "" > "$T_WORK/want.json"
python3 - "$T_WORK/want.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
days = {r["day"] for r in w["scenario_runs"]}
assert len(days) >= 2, f"the dataset spans {days}, not two days"
for s in ("abandonment", "agent_offers", "time_to_accept", "stale_runs", "dead_letters"):
    assert w[s], f"the dataset gives no {s}"
assert any(r["failed"] for r in w["scenario_runs"]), "no failed runs"
assert any(r["rejected"] and r["timed_out"] for r in w["agent_offers"]), "no rejections or time-outs"
assert any(r["abandoned"] for r in w["abandonment"]), "no abandonment"
print("ok: dataset covers", sorted(days), "with failures, rejections, time-outs, abandonment, stale runs, dead letters")
PY

"$CONVDIAG" stats --json --since 2026-11-19 --until "$tomorrow" > "$T_WORK/stats.json"
compare "stats --json" "$T_WORK/want.json" "$T_WORK/stats.json"

# The functions themselves, as an analyst calls them, from a session in
# another time zone: days are UTC days whatever the session's zone.
fn_json() { PGTZ=America/Los_Angeles sql "SELECT coalesce(json_agg(t), '[]') FROM $1 AS t"; }
since=2026-11-19T00:00:00Z until="${tomorrow}T00:00:00Z"
{
  echo "{"
  echo "\"scenario_runs\": $(fn_json "scenario_run_stats('$since', '$until')"),"
  echo "\"abandonment\": $(fn_json "abandonment_stats('$since', '$until')"),"
  echo "\"agent_offers\": $(fn_json "agent_offer_stats('$since', '$until')"),"
  echo "\"time_to_accept\": $(fn_json "time_to_accept_stats('$since', '$until')"),"
  echo "\"stale_runs\": $(fn_json "stale_runs_by_scenario()"),"
  echo "\"dead_letters\": $(fn_json "dead_letters_by_reason()"),"
  echo "\"time_to_accept_conversations\": $(fn_json "(SELECT * FROM time_to_accept('$since', '$until') ORDER BY initialized_at, live_work_item_id)")"
  echo "}"
} > "$T_WORK/functions.json"
compare "SQL functions" "$T_WORK/want.json" "$T_WORK/functions.json"

# One channel, one day: the filter and the range reach every section.
expect 2026-11-20T00:00:00.000Z 2026-11-21T00:00:00.000Z voice > "$T_WORK/want_voice.json"
"$CONVDIAG" stats --json --since 2026-11-20 --until 2026-11-20 --channel voice > "$T_WORK/voice.json"
compare "stats --channel voice, 2026-11-20" "$T_WORK/want_voice.json" "$T_WORK/voice.json"
python3 - "$T_WORK/voice.json" <<'PY' || fail "--channel voice returned other channels or no rows"
import json, sys
d = json.load(open(sys.argv[1]))
rows = [r for s in ("scenario_runs", "abandonment", "agent_offers", "time_to_accept") for r in d[s]]
assert rows and all(r["channel_type"] == "voice" for r in rows)
assert all(r["day"] == "2026-11-20" for r in rows)
assert d["channel"] == "voice" and d["since"].startswith("2026-11-20T00:00:00") and d["until"].startswith("2026-11-21T00:00:00")
PY
ok "--channel voice and a one-day range"

# An RFC 3339 range: the same as the dates it spans.
"$CONVDIAG" stats --json --since 2026-11-20T00:00:00Z --until 2026-11-21T00:00:00.000+00:00 --channel voice \
  > "$T_WORK/voice_rfc3339.json"
compare "stats with RFC 3339 times" "$T_WORK/want_voice.json" "$T_WORK/voice_rfc3339.json"

# Default range: the 7 days up to now.
"$CONVDIAG" stats --json > "$T_WORK/default.json"
python3 - "$T_WORK/default.json" <<'PY' || fail "default range is not the last 7 days"
import json, sys, time
from datetime import datetime
d = json.load(open(sys.argv[1]))
since, until = (datetime.fromisoformat(d[k].replace("Z", "+00:00")).timestamp() for k in ("since", "until"))
assert until - since == 7 * 86400 and abs(until - time.time()) < 120 and d["channel"] is None
PY
ok "default range: the last 7 days"

out=$("$CONVDIAG" stats --since 2026-11-19 --until "$tomorrow")
for heading in "Scenario runs ended" "Abandonment" "Agent offers answered" \
               "Time from ConversationInitialized to AgentAccepted" "Stale scenario runs" "Dead letters"; do
  grep -q "^$heading" <<< "$out" || fail "table output lacks the section '$heading'"
done
grep -q "^day  *channel_type  *scenario  *ended  *completed  *failed  *failure_rate  *p50_ms" <<< "$out" ||
  fail "scenario runs table header: $(head -5 <<< "$out")"
ok "table output: every section"

# Bad dates and ranges: exit 2, the value named.
for bad in "--since 2026-02-30" "--since 2026-11-xx" "--until yesterday" "--since 2026-11-20T08:00:00" \
           "--since 2026-11-21 --until 2026-11-20"; do
  rc=0
  # shellcheck disable=SC2086
  "$CONVDIAG" stats $bad > /dev/null 2> "$T_WORK/err" || rc=$?
  assert_eq "$rc" 2 "exit code of stats $bad"
  value=${bad#* }; value=${value%% *}
  grep -q -- "$value" "$T_WORK/err" || fail "stats $bad: message does not name '$value': $(cat "$T_WORK/err")"
done
grep -q "range is empty" "$T_WORK/err" || fail "empty range message: $(cat "$T_WORK/err")"
rc=0
"$CONVDIAG" stats --database-url "postgresql://127.0.0.1:1/nothing" > /dev/null 2> "$T_WORK/err" || rc=$?
assert_eq "$rc" 1 "exit code without PostgreSQL"
grep -q "cannot connect to PostgreSQL" "$T_WORK/err" || fail "message: $(cat "$T_WORK/err")"
echo "1 passed, 0 failed"
