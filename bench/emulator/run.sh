#!/usr/bin/env bash
# bench/emulator: the ingestion emulator's CPU time per accepted item, alone.
#
# Requests of 1000 trace envelopes shaped like the exporter's (tests/golden),
# x-json-stream, gzip level 1, every item different (conversations of 8
# traces, operation ids varying), times within the last two hours.  A round
# POSTs them over one kept-alive connection, checks through /api/stats that
# every item was accepted, reads the emulator's user + system CPU time from
# /proc/PID/stat, and empties the store (DELETE /api/items, not timed).
#
# Given several emulator binaries (an old build kept aside, the new one), a
# round runs each of them in turn, so that a machine shared with other work
# weighs on both alike.
# With PERF=FILE set, perf records the first emulator into FILE during the
# rounds, with PERF_ARGS (default -g; --call-graph dwarf names the callers
# inside libc and libcjson too).
# Usage: run.sh [REQUESTS] [ROUNDS] [EMULATOR...]
#        (300, 3, build/services/emulator/convdiag-emulator)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
requests=${1:-300}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
emulators=("$@")
(( $# )) || emulators=("$root/build/services/emulator/convdiag-emulator")
ikey=6a1e2f3b-0c4d-4e5f-8a9b-0c1d2e3f4a5b
per_request=1000

ninja -C "$root/build" >/dev/null

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "bench/emulator: making $requests bodies of $per_request items"
python3 - "$work" "$requests" "$per_request" "$ikey" <<'EOF'
import datetime, gzip, json, random, sys, uuid
work, requests, per_request, ikey = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rnd = random.Random(1)
def guid(): return str(uuid.UUID(int=rnd.getrandbits(128), version=4))
name = "Microsoft.ApplicationInsights." + ikey.replace("-", "") + ".Message"
org = guid()
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
scenarios = ["QueueAssignment", "AgentAccepted", "CustomerWaiting", "ConversationEnded"]
raw = packed = 0
for r in range(requests):
    lines = []
    for i in range(per_request):
        n = r * per_request + i
        if n % 8 == 0:
            lwi, channel = guid(), rnd.choice(["livechat", "voice", "messaging"])
        if n % 2 == 0:
            op, scenario = uuid.UUID(int=rnd.getrandbits(128)).hex, rnd.choice(scenarios)
        t = start + datetime.timedelta(milliseconds=n * 20 + rnd.randrange(20))
        props = {"organizationId": org, "LiveWorkItemID": lwi, "ChannelType": channel}
        if n % 2:
            props["Duration"] = str(rnd.randrange(100, 90000))
        props.update({
            "Category": "Routing",
            "powerplatform.analytics.scenario": "ConversationDiagnosticsScenario",
            "powerplatform.analytics.subscenario": scenario,
            "powerplatform.analytics.resource.id": lwi,
            "powerplatform.analytics.resource.organization.id": org,
            "omnichannel.channel.type": channel,
        })
        envelope = {
            "ver": 1, "name": name,
            "time": t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z", "iKey": ikey,
            "tags": {"ai.operation.id": op, "ai.operation.parentId": lwi,
                     "ai.operation.name": scenario, "ai.user.id": "0",
                     "ai.cloud.role": "convdiag", "ai.cloud.roleInstance": "ingest-7f9c",
                     "ai.internal.sdkVersion": "convdiag:0.1.0"},
            "data": {"baseType": "MessageData", "baseData": {
                "ver": 2, "message": "ScenarioCompleted" if n % 2 else "ScenarioStarted",
                "severityLevel": 0, "properties": props}},
        }
        lines.append(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False))
    text = ("\n".join(lines) + "\n").encode()
    body = gzip.compress(text, compresslevel=1)
    raw += len(text)
    packed += len(body)
    with open(f"{work}/body{r}.gz", "wb") as f:
        f.write(body)
items = requests * per_request
print(f"bench/emulator: {raw / items:.0f} bytes/item as JSON, {packed / items:.1f} gzip'ed")
EOF

# Starts emulator $1 on a free port; prints "PID PORT".
start() {
  local log="$work/emulator$2.log" port=
  "$1" --listen 127.0.0.1:0 --ikey "$ikey" --max-items $((requests * per_request + 1000)) \
    --max-body $((64 * 1024 * 1024)) >/dev/null 2>"$log" &
  local pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening ingestion=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" || true)
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || { echo "bench/emulator: $1 did not start" >&2; exit 1; }
  echo "$pid $port"
}

# One round against the emulator PID listening on PORT: "CPU_US_PER_ITEM ITEMS_PER_S".
round() {
  python3 - "$work" "$requests" "$per_request" "$1" "$2" <<'EOF'
import http.client, json, os, sys, time
work, requests, per_request, pid, port = sys.argv[1:]
requests, per_request = int(requests), int(per_request)
hz = os.sysconf("SC_CLK_TCK")
def ticks():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime
def call(conn, method, path, body=None, headers={}):
    conn.request(method, path, body, headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"bench/emulator: {method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data)
bodies = []
for r in range(requests):
    with open(f"{work}/body{r}.gz", "rb") as f:
        bodies.append(f.read())
headers = {"Content-Type": "application/x-json-stream", "Content-Encoding": "gzip"}
conn = http.client.HTTPConnection("127.0.0.1", int(port))
call(conn, "DELETE", "/api/items")
c0, t0 = ticks(), time.monotonic()
for body in bodies:
    call(conn, "POST", "/v2.1/track", body, headers)
t1, c1 = time.monotonic(), ticks()
stats = call(conn, "GET", "/api/stats")
items = requests * per_request
if stats["itemsAccepted"] != items or stats["duplicates"] != 0:
    sys.exit(f"bench/emulator: {stats['itemsAccepted']} of {items} accepted, "
             f"{stats['duplicates']} duplicates")
call(conn, "DELETE", "/api/items")
print(f"{(c1 - c0) / hz / items * 1e6:.2f} {items / (t1 - t0):.0f}")
EOF
}

pid_of=() port_of=() cpus=() rates=()
for i in "${!emulators[@]}"; do
  read -r pid port <<<"$(start "${emulators[$i]}" "$i")"
  pid_of+=("$pid") port_of+=("$port") pids+=("$pid")
done
perf_pid=
if [[ -n "${PERF:-}" ]]; then
  # shellcheck disable=SC2086 # PERF_ARGS is several words
  perf record -q ${PERF_ARGS:--g} -p "${pid_of[0]}" -o "$PERF" 2>/dev/null &
  perf_pid=$!
  sleep 0.5
fi
name() { echo "${emulators[$1]#"$root"/}"; }
for r in $(seq "$rounds"); do
  for i in "${!emulators[@]}"; do
    out=$(round "${pid_of[$i]}" "${port_of[$i]}")
    read -r cpu rate <<<"$out"
    echo "round $r $(name "$i"): $cpu us CPU/item, $rate items/s"
    cpus[i]+="$cpu " rates[i]+="$rate "
  done
done
if [[ -n "$perf_pid" ]]; then
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
fi
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for i in "${!emulators[@]}"; do
  echo "median of $rounds rounds $(name "$i"): $(median <<<"${cpus[i]}") us CPU/item," \
    "$(median <<<"${rates[i]}") items/s"
done
