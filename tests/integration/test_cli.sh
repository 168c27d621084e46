#!/usr/bin/env bash
# The command line: --help everywhere, usage errors exit 2 with a message,
# migrate is idempotent and a failing migration leaves the database as it was.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

# expect RC PATTERN CMD...: exit code and a line of output (stdout or stderr).
expect() {
  local want_rc=$1 pattern=$2 rc=0 out
  shift 2
  out=$("$@" 2>&1) || rc=$?
  [[ $rc == "$want_rc" ]] || fail "'$*' exited $rc, expected $want_rc: $out"
  grep -q -- "$pattern" <<< "$out" || fail "'$*' did not say '$pattern': $out"
  ok "'$*' -> $rc"
}

expect 0 "Usage: convdiag COMMAND" "$CONVDIAG" --help
expect 2 "Usage: convdiag COMMAND" "$CONVDIAG"
expect 2 "unknown command 'frobnicate'" "$CONVDIAG" frobnicate
for c in run migrate simulate version; do
  expect 0 "Usage: convdiag $c" "$CONVDIAG" "$c" --help
done
expect 2 "unrecognized option '--bogus'" "$CONVDIAG" run --bogus
expect 2 "requires an argument" "$CONVDIAG" run --topic
expect 2 "unexpected argument 'extra'" "$CONVDIAG" migrate extra
expect 2 "--progress: 'soon' is not a number of seconds" "$CONVDIAG" run --progress soon
expect 2 "--conversations: 'many' is not a whole number" "$CONVDIAG" simulate --conversations many
expect 2 "--start: 'yesterday' is not an RFC 3339 date-time" "$CONVDIAG" simulate --start yesterday
expect 2 "--set expects KEY=VALUE, got 'nonsense'" "$CONVDIAG" run --set nonsense
expect 2 "unknown setting 'no.such.key'" "$CONVDIAG" run --set no.such.key=1
expect 2 "batch.max.events: '0' is not a whole number between 1 and 1000000" \
  "$CONVDIAG" run --set batch.max.events=0
expect 2 "CONVDIAG_LOG_LEVEL: log.level: 'loud'" env CONVDIAG_LOG_LEVEL=loud "$CONVDIAG" migrate
expect 2 "no-such-file.properties" "$CONVDIAG" migrate --config /nonexistent/no-such-file.properties
expect 2 "kafka.no.such.property" "$CONVDIAG" simulate --set kafka.no.such.property=1
expect 0 "convdiag 0" "$CONVDIAG" version

# check: an event, a wrapper with Kafka headers, and an event that merely has a field "event".
ev='{"eventId":"e1","timestamp":"2026-11-20T08:00:00.000Z","organizationId":"62206a64-7414-46f3-b0b7-963a1ee4ff66","liveWorkItemId":"LWI-1","scenario":"RTQ","status":"Started","channelType":"voice"}'
tp=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
out=$(printf '%s\n' "$ev" "{\"headers\":{\"traceparent\":\"$tp\"},\"event\":${ev/e1/e2}}" \
        "${ev%\}},\"event\":$ev}" | "$CONVDIAG" check 2>/dev/null) && fail "check accepted a bad line"
grep -q '"line":1,"ok":true.*"scenario":"QueueAssignment".*"operationIdSource":"liveWorkItemId"' <<< "$out" ||
  fail "check line 1: $out"
grep -q '"line":2,"ok":true.*"operation_Id":"0af7651916cd43dd8448eb211c80319c","operationIdSource":"traceparent-header"' <<< "$out" ||
  fail "check line 2: $out"
grep -q '"line":3,"ok":false,"error":"event: unknown field' <<< "$out" || fail "check line 3: $out"
ok "check: events, Kafka headers, and a field named event"

# check --envelope: the exporter's envelope; a Completed without durationMs reports the run's.
done_ev='{"eventId":"e9","timestamp":"2026-11-20T08:00:02.500Z","organizationId":"62206a64-7414-46f3-b0b7-963a1ee4ff66","liveWorkItemId":"LWI-1","scenario":"QueueAssignment","status":"Completed","channelType":"voice"}'
key=1b2c3d4e-aaaa-bbbb-cccc-0123456789ab
out=$(printf '%s\n' "$ev" "$done_ev" |
      APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$key;IngestionEndpoint=http://127.0.0.1:1/" \
      "$CONVDIAG" check --envelope)
grep -q "^{\"ver\":1,\"name\":\"Microsoft.ApplicationInsights.${key//-/}.Message\",\"time\":\"2026-11-20T08:00:00.0000000Z\",\"iKey\":\"$key\"" <<< "$out" ||
  fail "envelope head: $out"
grep -q '"message":"ScenarioCompleted".*"Duration":"2500"' <<< "$out" || fail "envelope duration from the pair: $out"
err=$(APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=$key;Bogus" "$CONVDIAG" check --envelope < /dev/null 2>&1) && fail "malformed connection string accepted"
grep -q "APPLICATIONINSIGHTS_CONNECTION_STRING" <<< "$err" || fail "connection string error: $err"
grep -q "$key" <<< "$err" && fail "the instrumentation key was echoed: $err"
ok "check --envelope"
printf '# settings\nlog.level = warn\nbatch.max.events = abc\n' > /tmp/cd-cli-$$.properties
expect 2 "cd-cli-$$.properties:3: batch.max.events: 'abc'" "$CONVDIAG" run --config /tmp/cd-cli-$$.properties
rm -f /tmp/cd-cli-$$.properties
expect 1 "cannot connect to PostgreSQL" "$CONVDIAG" migrate --database-url "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"

# migrate: idempotent; a failing migration names itself and leaves nothing behind.
t_init cli 1
expect 0 "0 migration(s) applied" "$CONVDIAG" migrate
admin_sql "CREATE DATABASE \"${T_DB}_f\""
PGDATABASE="${T_DB}_f" sql "CREATE TABLE dead_letters (id int)"
rc=0
out=$(PGDATABASE="${T_DB}_f" "$CONVDIAG" migrate 2>&1) || rc=$?
assert_eq "$rc" 1 "exit code of a failing migration"
grep -q '0001_events.sql failed, nothing of it was applied: relation "dead_letters" already exists' <<< "$out" ||
  fail "failing migration not named: $out"
assert_eq "$(PGDATABASE="${T_DB}_f" sql "SELECT count(*) FROM schema_migrations")" 0 "migrations recorded"
assert_eq "$(PGDATABASE="${T_DB}_f" sql "SELECT to_regclass('events') IS NULL")" t "events table rolled back"
drop_db "${T_DB}_f"

# run without a schema: a clear error, not a wait.
admin_sql "CREATE DATABASE \"${T_DB}_e\""
expect 1 "has \`convdiag migrate\` been run" env PGDATABASE="${T_DB}_e" "$CONVDIAG" run --until-caught-up
drop_db "${T_DB}_e"
# a topic that does not exist
expect 1 "no-such-topic" "$CONVDIAG" run --until-caught-up --topic no-such-topic
echo "1 passed, 0 failed"
