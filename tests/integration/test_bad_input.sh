#!/usr/bin/env bash
# Bad messages interleaved with good events on one partition: the good ones are
# stored, each bad one is dead-lettered byte for byte with its Kafka
# coordinates and a specific reason, and the partition keeps moving.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init bad_input 1

"$CONVDIAG" simulate --seed 5 --start "$SIM_START" --events 4 --dry-run > "$T_WORK/good.jsonl" 2>/dev/null
mapfile -t good < "$T_WORK/good.jsonl"
base=${good[0]}

# name|payload (printf format)|expected reason
cases=(
  "not_json|{\"eventId\": |message is not valid JSON"
  "trailing|${base//%/%%} x|message has data after the JSON value"
  "array|[1,2]|message is an array, not a JSON object"
  "wrong_type|${base/\"status\":\"Started\"/\"status\":5}|status: expected a string, got a number"
  "bad_enum|${base/\"status\":\"Started\"/\"status\":\"Done\"}|status: 'Done' is not one of Started, Completed, Failed"
  "missing|{\"timestamp\":\"2026-11-20T08:00:00.000Z\"}|eventId: required field is missing"
  "bad_uuid|${base/\"organizationId\":\"/\"organizationId\":\"x}|organizationId: 'x"
  "bad_time|${base/.000Z/Z}|timestamp: '2026-11-20T08:00:00Z' needs at least 3 fractional digits"
  "unknown_field|${base/\{/\{\"colour\":\"red\",}|colour: unknown field"
  "bad_utf8|${base/\"status\"/\"stat\\xff\\xfeus\"}|message is not valid UTF-8"
  "nul_byte|{\"eventId\":\"a\\x00b\"}|message contains a NUL byte"
)

files=()
n=0
for c in "${cases[@]}"; do
  IFS='|' read -r name payload _ <<< "$c"
  f="$T_WORK/$(printf '%02d' $n)_bad_$name"
  # shellcheck disable=SC2059
  printf "$payload" > "$f"
  files+=("$f" )
  n=$((n + 1))
  # A good event after every few bad ones: the partition must move past them.
  if (( n % 4 == 0 )); then
    g="$T_WORK/$(printf '%02d' $n)_good"
    printf '%s' "${good[n / 4]}" > "$g"
    files+=("$g")
    n=$((n + 1))
  fi
done
# Oversized: a valid event padded past event.max.bytes (64 KiB).
pad=$(head -c 70000 /dev/zero | tr '\0' 'a')
printf '%s' "${base/\"status\":\"Started\"/\"status\":\"Failed\",\"failureReason\":\"$pad\"}" > "$T_WORK/99_bad_oversized"
files+=("$T_WORK/99_bad_oversized")
printf '%s' "${good[0]}" > "$T_WORK/zz_good"
files+=("$T_WORK/zz_good")
# Good events whose eventIds an array literal (the outbox's) must quote: a
# quote, a backslash, a comma, braces, spaces, the word NULL.
"$CONVDIAG" simulate --seed 6 --start "$SIM_START" --events 3 --dry-run > "$T_WORK/odd.jsonl" 2>/dev/null
odd_ids=('NULL' 'q\"u,o{t}e\\ 1' ' {2} ')
k=0
while IFS= read -r line; do
  f="$T_WORK/zz_good_odd_$k"
  printf '%s' "$line" | sed "s/\"eventId\":\"[^\"]*\"/\"eventId\":\"${odd_ids[k]//\\/\\\\}\"/" > "$f"
  files+=("$f")
  k=$((k + 1))
done < "$T_WORK/odd.jsonl"

kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -p 0 "${files[@]}"
# Last, a message with a key and no value at all (a tombstone).
printf 'tombstone-key:\n' | kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -p 0 -K: -Z

"$CONVDIAG" run --until-caught-up > "$T_WORK/run.out"
cat "$T_WORK/run.out"

good_sent=$(printf '%s\n' "${files[@]}" | grep -c '_good\(_odd_.\)\?$')
assert_eq "$(sql 'SELECT count(*) FROM events')" "$good_sent" "events stored"
assert_eq "$(sql 'SELECT count(*) FROM dead_letters')" "$(( ${#cases[@]} + 2 ))" "dead letters"
assert_eq "$(sql "SELECT count(*) FROM events WHERE event_id IN ('NULL', 'q\"u,o{t}e\\ 1', ' {2} ')")" 3 \
  "events with odd eventIds"
# The outbox names exactly the events stored, odd ids and all.
assert_eq "$(sql "SELECT count(*) FROM (SELECT unnest(event_ids) AS id FROM export_outbox) AS o
                  FULL JOIN events AS e ON e.event_id = o.id WHERE o.id IS NULL OR e.event_id IS NULL")" \
  0 "events missing from the outbox or outbox ids not stored"

offset=0
for f in "${files[@]}"; do
  if [[ $f == *_bad_* ]]; then
    name=${f##*_bad_}
    expect=""
    for c in "${cases[@]}"; do
      [[ ${c%%|*} == "$name" ]] && expect=${c##*|}
    done
    [[ $name == oversized ]] && expect="message is 70"
    row=$(sql "SELECT kafka_partition, encode(sha256(payload), 'hex'), reason FROM dead_letters
               WHERE kafka_topic = '$T_TOPIC' AND kafka_offset = $offset")
    [[ -n $row ]] || fail "$name (offset $offset) is not in dead_letters"
    IFS='|' read -r part sum reason <<< "$row"
    assert_eq "$part" 0 "$name partition"
    assert_eq "$sum" "$(sha256sum < "$f" | cut -d' ' -f1)" "$name payload bytes"
    [[ $reason == *"$expect"* ]] || fail "$name: reason '$reason' does not say '$expect'"
    ok "$name reason: $reason"
  fi
  offset=$((offset + 1))
done

assert_eq "$(sql "SELECT convert_from(message_key, 'UTF8') || ' ' || length(payload) || ' ' || reason
                 FROM dead_letters WHERE kafka_offset = $offset")" "tombstone-key 0 message is empty" "tombstone"

# Nothing is stuck: the offsets past the bad messages were committed.
"$CONVDIAG" run --until-caught-up > "$T_WORK/run2.out"
grep -q "0 messages" "$T_WORK/run2.out" || fail "second run re-read: $(cat "$T_WORK/run2.out")"
ok "second run read nothing"
echo "1 passed, 0 failed"
