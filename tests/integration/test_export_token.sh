#!/usr/bin/env bash
# Export with Microsoft Entra authentication, against the ingestion emulator
# requiring a bearer token: a token file read once and every event accepted;
# the token rotated on the service's side while the file still holds the old
# one, so the exporter gets 401s and keeps every event; the file rewritten and
# picked up, every event accepted exactly once; the same through a token
# command, and through one that hangs until it works again.  No token may
# ever appear in what convdiag writes.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
: "${EMULATOR:?set by meson: the convdiag-emulator binary}"
t_init export_token 2

IKEY=3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c
# JWT-shaped tokens, as Entra issues them, with an "exp" an hour away.
jwt() {
  python3 - "$1" <<'PY'
import base64, json, sys, time
b64 = lambda o: base64.urlsafe_b64encode(json.dumps(o, separators=(",", ":")).encode()).rstrip(b"=").decode()
print(b64({"typ": "JWT", "alg": "RS256"}) + "." +
      b64({"aud": "https://monitor.azure.com", "exp": int(time.time()) + 3600, "sub": sys.argv[1]}) +
      "." + base64.urlsafe_b64encode(sys.argv[1].encode() * 8).rstrip(b"=").decode())
PY
}
A=$(jwt "token-a-$$") B=$(jwt "token-b-$$") C=$(jwt "token-c-$$")
[[ "$A" != "$B" && "$B" != "$C" ]] || fail "the test tokens are not distinct"

# The emulator on a free port, requiring A.
"$EMULATOR" --listen 127.0.0.1:0 --ikey "$IKEY" --bearer "$A" 2> "$T_WORK/emulator.log" &
emulator_pid=$!
T_PIDS="$emulator_pid"
for _ in $(seq 100); do
  grep -q "listening ingestion=" "$T_WORK/emulator.log" && break
  sleep 0.1
done
port=$(sed -n 's/.*listening ingestion=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T_WORK/emulator.log")
[[ -n "$port" ]] || fail "the emulator did not start: $(cat "$T_WORK/emulator.log")"
base="http://127.0.0.1:$port"
ok "emulator on port $port, a bearer token required"

# stat FIELD [STATUS]: a counter of the emulator's /api/stats (responses by status with STATUS).
emu_stat() {
  curl -sf "$base/api/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["responses"].get(sys.argv[2], 0) if sys.argv[1] == "responses" else s[sys.argv[1]])' "$@"
}
control() { curl -sf -X POST -d "$1" "$base/control" >/dev/null || fail "POST /control"; }
events() { sql "SELECT count(*) FROM events"; }
outbox() { sql "SELECT coalesce(sum(cardinality(event_ids)), 0) FROM export_outbox"; }
failures() { sql "SELECT count(*) FROM export_failures"; }
# An hour ago: inside the service's window (48 h back, 2 h ahead) for every event.
start() { date -u -d "-1 hour" +%Y-%m-%dT%H:%M:%S.000Z; }

export CONVDIAG_EXPORT_ENABLED=true CONVDIAG_EXPORT_WORKERS=2
export APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$IKEY;IngestionEndpoint=$base/"
# Short waits between tries keep the test quick; the policy is the same.
export CONVDIAG_EXPORT_BACKOFF_MAX_MS=1000 CONVDIAG_EXPORT_POLL_MS=100
export CONVDIAG_LOG_LEVEL=info
token_file="$T_WORK/token"
printf '%s\n' "$A" > "$token_file"
export CONVDIAG_EXPORT_TOKEN_FILE="$token_file"

# 1. The token file holds the token the service wants: everything goes through.
"$CONVDIAG" simulate --seed 41 --start "$(start)" --conversations 20 --progress 0 >/dev/null
"$CONVDIAG" run --until-caught-up > "$T_WORK/run1.out" 2> "$T_WORK/run1.err" ||
  fail "run: $(cat "$T_WORK/run1.err")"
n=$(events)
[[ $n -gt 100 ]] || fail "only $n events stored"
assert_eq "$(emu_stat itemsAccepted)" "$n" "token file: items accepted by the emulator = events stored"
assert_eq "$(outbox)" 0 "token file: export_outbox empty"
assert_eq "$(failures)" 0 "token file: export_failures empty"
assert_eq "$(emu_stat responses 401)" 0 "token file: no 401"

# 2. The service now wants B; the file still holds A.
control "{\"bearer\":\"$B\"}"
"$CONVDIAG" simulate --seed 42 --start "$(start)" --conversations 15 --progress 0 >/dev/null
CONVDIAG_EXPORT_WORKERS=0 "$CONVDIAG" run --until-caught-up > /dev/null 2> "$T_WORK/run2.err" ||
  fail "run without export: $(cat "$T_WORK/run2.err")"
total=$(events)
waiting=$(outbox)
[[ $waiting -eq $((total - n)) ]] || fail "outbox holds $waiting events, expected $((total - n))"
"$CONVDIAG" export > "$T_WORK/export.out" 2> "$T_WORK/export.err" &
export_pid=$!
T_PIDS="$emulator_pid $export_pid"
# A 401 is about the token, not the events: none may be refused for good.
for _ in $(seq 100); do
  [[ $(emu_stat responses 401) -ge 3 || $(failures) -gt 0 ]] && break
  sleep 0.1
done
assert_eq "$(failures)" 0 "old token: nothing in export_failures"
[[ $(emu_stat responses 401) -ge 3 ]] || fail "no 401 from the emulator: $(cat "$T_WORK/export.err")"
ok "old token: $(emu_stat responses 401) requests answered 401"
kill -0 "$export_pid" 2>/dev/null || fail "convdiag export ended: $(cat "$T_WORK/export.err")"
assert_eq "$(outbox)" "$waiting" "old token: every event still in export_outbox"
grep -q "HTTP 401" "$T_WORK/export.err" || fail "the log does not say 401: $(cat "$T_WORK/export.err")"
ok "old token: the log says HTTP 401"

# 3. The file is rewritten with B: picked up, everything accepted once.
printf '%s\n' "$B" > "$token_file"
for _ in $(seq 200); do
  [[ $(outbox) -eq 0 ]] && break
  sleep 0.1
done
assert_eq "$(outbox)" 0 "new token: export_outbox drained"
assert_eq "$(emu_stat itemsAccepted)" "$total" "new token: items accepted = events stored"
assert_eq "$(emu_stat duplicates)" 0 "new token: duplicates"
assert_eq "$(failures)" 0 "new token: export_failures empty"
kill -TERM "$export_pid"
rc=0
wait "$export_pid" || rc=$?
T_PIDS="$emulator_pid"
assert_eq "$rc" 0 "convdiag export exit code after SIGTERM"

# 4. The token from a command, the service wanting C.
control "{\"bearer\":\"$C\"}"
printf '%s\n' "$C" > "$T_WORK/token-c"
"$CONVDIAG" simulate --seed 43 --start "$(start)" --conversations 10 --progress 0 >/dev/null
CONVDIAG_EXPORT_TOKEN_FILE='' CONVDIAG_EXPORT_TOKEN_COMMAND="cat '$T_WORK/token-c'" \
  "$CONVDIAG" run --until-caught-up > "$T_WORK/run3.out" 2> "$T_WORK/run3.err" ||
  fail "run with a token command: $(cat "$T_WORK/run3.err")"
total=$(events)
assert_eq "$(emu_stat itemsAccepted)" "$total" "token command: items accepted = events stored"
assert_eq "$(outbox)" 0 "token command: export_outbox empty"
assert_eq "$(emu_stat duplicates)" 0 "token command: duplicates"
assert_eq "$(failures)" 0 "token command: export_failures empty"

# 5. A token command that hangs: killed after export.token.timeout.ms, export
# paused with the reason and no outbox row held meanwhile; once the command
# works again, everything goes, once.
"$CONVDIAG" simulate --seed 44 --start "$(start)" --conversations 10 --progress 0 >/dev/null
CONVDIAG_EXPORT_WORKERS=0 "$CONVDIAG" run --until-caught-up > /dev/null 2> "$T_WORK/run4.err" ||
  fail "run without export: $(cat "$T_WORK/run4.err")"
total=$(events)
waiting=$(outbox)
touch "$T_WORK/hang"
CONVDIAG_EXPORT_TOKEN_FILE='' CONVDIAG_EXPORT_TOKEN_TIMEOUT_MS=1000 \
  CONVDIAG_EXPORT_TOKEN_COMMAND="if [ -e '$T_WORK/hang' ]; then sleep 59.125; fi; cat '$T_WORK/token-c'" \
  "$CONVDIAG" export > "$T_WORK/export5.out" 2> "$T_WORK/export5.err" &
export_pid=$!
T_PIDS="$emulator_pid $export_pid"
wait_for 10 "the hung token command to time out" \
  grep -q "did not finish within 1000 ms" "$T_WORK/export5.err" >/dev/null
grep -q "export paused: no bearer token: the bearer token command did not finish within 1000 ms" \
  "$T_WORK/export5.err" || fail "a hung token command, not reported: $(tail -3 "$T_WORK/export5.err")"
sleep 1.5 # a second timeout, the first command killed
# At most the command of the current try is alive (its sleep; its sh names it too,
# hence ^): each one before it was killed.
hung=$(pgrep -fc '^sleep 59.125' || true)
(( hung <= 1 )) || fail "$hung hung token commands alive: the earlier ones were not killed"
assert_eq "$(sql "SELECT count(*) FROM export_outbox WHERE claimed_by IS NOT NULL")" 0 \
  "a hung token command: no outbox row held while it runs"
assert_eq "$(outbox)" "$waiting" "a hung token command: every event kept"
rm "$T_WORK/hang"
for _ in $(seq 200); do
  [[ $(outbox) -eq 0 ]] && break
  sleep 0.1
done
assert_eq "$(emu_stat itemsAccepted)" "$total" "the token command working again: items accepted = events stored"
assert_eq "$(emu_stat duplicates)" 0 "the token command working again: duplicates"
assert_eq "$(failures)" 0 "the token command working again: export_failures empty"
grep -q "a bearer token was had again" "$T_WORK/export5.err" || fail "no word of the token coming back"
kill -TERM "$export_pid"
rc=0
wait "$export_pid" || rc=$?
T_PIDS="$emulator_pid"
assert_eq "$rc" 0 "convdiag export exit code after SIGTERM"

# No token in anything convdiag or the emulator wrote.
for f in "$T_WORK"/*.out "$T_WORK"/*.err "$T_WORK/emulator.log"; do
  for t in "$A" "$B" "$C"; do
    if grep -qF "$t" "$f"; then fail "$(basename "$f") holds a token"; fi
    # Nor its signature alone, the part that is not plain base64 of public claims.
    if grep -qF "${t##*.}" "$f"; then fail "$(basename "$f") holds part of a token"; fi
  done
done
ok "no token in convdiag's output or logs, nor in the emulator's"

kill -TERM "$emulator_pid"
rc=0
wait "$emulator_pid" || rc=$?
T_PIDS=""
assert_eq "$rc" 0 "emulator exit code after SIGTERM"
rm -rf "$T_WORK"
echo "1 passed, 0 failed"
