#!/usr/bin/env bash
# The emulator's page in a real browser, after a demo run: events go through
# Kafka, `convdiag run` and its exporter into the emulator; headless Chromium
# opens the page on one conversation, the rendered DOM is checked against the
# envelopes `convdiag check --envelope` makes of the same events, and a
# screenshot is kept in the build's meson-logs.
set -euo pipefail

: "${CONVDIAG:?set by meson: the convdiag binary}"
: "${CONVDIAG_EMULATOR:?set by meson: the convdiag-emulator binary}"
: "${CD_BUILD_ROOT:?set by meson: the build directory}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

IKEY=0fdcec70-0ce5-4085-89d9-9ae8ead9af66
SHOT="$CD_BUILD_ROOT/meson-logs/emulator-traces.png"

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$CHROMIUM" ]]; then
  # 77: meson's "skipped"; deploy/local/install.sh installs it.
  echo "chromium is not installed (deploy/local/install.sh installs it): skipped"
  exit 77
fi

WORK=$(mktemp -d)
EMU_PID=
DB=
cleanup() {
  local rc=$?
  set +e
  if [[ -n "$DB" ]]; then
    PGDATABASE=postgres psql -X -q -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" 2>/dev/null
  fi
  if [[ -n "$EMU_PID" ]] && kill -0 "$EMU_PID" 2>/dev/null; then
    kill -TERM "$EMU_PID"
    for _ in $(seq 50); do kill -0 "$EMU_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$EMU_PID" 2>/dev/null
  fi
  if ((rc != 0)); then
    echo "--- emulator log"; cat "$WORK/emulator.log" 2>/dev/null
    echo "--- chromium log (last lines)"; tail -n 20 "$WORK/chromium.log" 2>/dev/null
  fi >&2
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# --- the emulator, on any free port ---------------------------------------------
# The log exists before the emulator starts: the shell opens it for the
# background process, which may come after the first read below.
: > "$WORK/emulator.log"
"$CONVDIAG_EMULATOR" --listen 127.0.0.1:0 --ikey "$IKEY" 2>"$WORK/emulator.log" &
EMU_PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening ingestion=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/emulator.log")
  [[ -n "$PORT" ]] && break
  kill -0 "$EMU_PID" 2>/dev/null || fail "the emulator exited at start"
  sleep 0.1
done
[[ -n "$PORT" ]] || fail "the emulator did not say which port it took"
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 50); do
  curl -fsS -o /dev/null "$BASE/api/stats" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/api/stats" || fail "the emulator does not answer on $BASE"
ok "emulator listening on $BASE"

# --- traces into the emulator ------------------------------------------------------
# load_traces: the demo's path on the local stack (deploy/local): a few
# simulated conversations to Kafka, `convdiag run` until caught up, exporting
# to this emulator; their events are left in $WORK/events.jsonl (the same
# messages, from --dry-run).  The start is half an hour ago: inside the
# service's 48 h window, and the last conversation (about 15 minutes) ends in
# the past.
load_traces() {
  # shellcheck source=../../deploy/local/env.sh
  . "$here/../../deploy/local/env.sh"
  pg_isready -q -t 5 || fail "PostgreSQL is not reachable at $PGHOST:$PGPORT (run deploy/local/stack.sh up)"
  local id=browser_$$_$RANDOM start
  DB=cdtest_$id
  PGDATABASE=postgres psql -X -q -c "CREATE DATABASE \"$DB\""
  export PGDATABASE=$DB CONVDIAG_KAFKA_TOPIC=cdtest-$id CONVDIAG_KAFKA_GROUP_ID=cdtest-$id
  export CONVDIAG_LOG_LEVEL=warn CONVDIAG_EXPORT_WORKERS=1
  export APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$IKEY;IngestionEndpoint=$BASE/"
  "$here/../../deploy/local/kafka.sh" topic "$CONVDIAG_KAFKA_TOPIC" 2 >/dev/null
  "$CONVDIAG" migrate >/dev/null
  start=$(date -u -d '30 minutes ago' +%Y-%m-%dT%H:%M:%S.000Z)
  local sim=(--seed 11 --conversations 5 --start "$start" --progress 0)
  "$CONVDIAG" simulate "${sim[@]}" --dry-run >"$WORK/events.jsonl" 2>/dev/null
  "$CONVDIAG" simulate "${sim[@]}" >/dev/null 2>&1
  "$CONVDIAG" run --until-caught-up >"$WORK/run.out" || fail "convdiag run failed"
  grep -q "^export: $(wc -l <"$WORK/events.jsonl") items accepted" "$WORK/run.out" ||
    fail "the run did not export every event: $(cat "$WORK/run.out")"
}
load_traces
events=$(wc -l <"$WORK/events.jsonl")

# The expectation: the exact envelopes the exporter sends for these events.
APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$IKEY;IngestionEndpoint=$BASE/" \
  "$CONVDIAG" check --envelope <"$WORK/events.jsonl" >"$WORK/expected.jsonl" ||
  fail "convdiag check --envelope refused some events"
stored=$(curl -fsS "$BASE/api/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored"])')
[[ "$stored" == "$events" ]] || fail "the emulator holds $stored traces, expected $events"
ok "$events traces of 5 conversations in the emulator"

# One conversation with a session_Id, not the most recent one (the list's
# first), so the page shows it because the address asked for it.
curl -fsS "$BASE/api/conversations" >"$WORK/conversations.json"
LWI=$(python3 - "$WORK/expected.jsonl" "$WORK/conversations.json" <<'PY'
import json, sys
with_session = set()
for line in open(sys.argv[1]):
    env = json.loads(line)
    if env["tags"].get("ai.session.id"):
        with_session.add(env["data"]["baseData"]["properties"]["LiveWorkItemID"])
listed = [c["LiveWorkItemID"] for c in json.load(open(sys.argv[2]))["conversations"]]
picks = [lwi for lwi in listed[1:] if lwi in with_session] or listed[1:]
print(picks[0] if picks else "")
PY
)
[[ -n "$LWI" ]] || fail "no conversation to pick"
curl -fsS -G --data-urlencode "conversation=$LWI" "$BASE/api/traces" >"$WORK/traces.json"
URL="$BASE/#conversation=$LWI"
ok "conversation picked: $LWI"

# --- Chromium ------------------------------------------------------------------
# Root needs --no-sandbox; a throwaway profile and home leave nothing behind.
# Virtual time waits for the page's fetches; the table's data-state says
# whether they were done, and a slow machine gets another try.
browse() {
  mkdir -p "$WORK/home"
  HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_CACHE_HOME="$WORK/home/.cache" \
    timeout -k 5 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
    --user-data-dir="$WORK/profile" --no-first-run --no-default-browser-check \
    --disable-extensions --disable-sync --window-size=1400,900 \
    --virtual-time-budget="$1" "${@:2}" "$URL" 2>>"$WORK/chromium.log"
}

state=
for budget in 5000 15000 30000; do
  browse "$budget" --dump-dom >"$WORK/dom.html" || fail "chromium --dump-dom failed (exit $?)"
  state=$(python3 "$here/read_page.py" state "$WORK/dom.html")
  [[ "$state" == "loaded $LWI" ]] && break
  echo "page not ready after ${budget} ms of virtual time (table: $state), trying again"
done
[[ "$state" == "loaded $LWI" ]] || fail "the page never showed the conversation's traces (table: $state)"
ok "chromium rendered $URL"

python3 "$here/read_page.py" check "$WORK/dom.html" "$LWI" "$WORK/expected.jsonl" \
  "$WORK/traces.json" "$WORK/conversations.json" || fail "the page does not show the conversation's traces as expected"

# --- the screenshot --------------------------------------------------------------
browse 15000 --screenshot="$WORK/shot.png" >/dev/null || fail "chromium --screenshot failed (exit $?)"
python3 - "$WORK/shot.png" <<'PY' || fail "the screenshot is not a 1400x900 PNG with something on it"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
assert (width, height) == (1400, 900), f"{width}x{height}"
# A blank or half-drawn page compresses to a few kB; the table does not.
assert len(data) > 30000, f"only {len(data)} bytes"
PY
mkdir -p "$(dirname "$SHOT")"
cp "$WORK/shot.png" "$SHOT"
ok "screenshot, $(stat -c %s "$SHOT") bytes: $SHOT"

# --- the emulator stops cleanly ----------------------------------------------------
kill -TERM "$EMU_PID"
rc=0
wait "$EMU_PID" || rc=$?
EMU_PID=
[[ $rc -eq 0 ]] || fail "the emulator exited $rc on SIGTERM"
ok "emulator stopped on SIGTERM"
