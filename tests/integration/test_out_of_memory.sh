#!/usr/bin/env bash
# A message that cannot be held (its copy's allocation fails, by an
# allocator preloaded to fail just that one) stops the run with a non-zero
# exit before any later offset of its partition is stored: the next run
# reads it again, and every event and the message (a dead letter: too big
# for an event) end up stored exactly once.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
: "${FAIL_ALLOC:?set by meson: the failing allocator}"
# The sanitizers' allocator cannot be replaced.
# (Read whole: grep -q would quit early, and ldd's SIGPIPE fail the pipeline.)
if [[ $(ldd "$CONVDIAG") == *libasan* ]]; then echo "skipped: a sanitizer build"; exit 77; fi
t_init out_of_memory 1

size=333331 # larger than a copy block, so that its copy is an allocation of its own
"$CONVDIAG" simulate --seed 71 --start "$SIM_START" --events 1000 --progress 0 >/dev/null
python3 -c "import sys; sys.stdout.write('x' * $size)" |
  kcat -P -b "$CONVDIAG_KAFKA_BROKERS" -t "$T_TOPIC" -k big
"$CONVDIAG" simulate --seed 72 --start 2026-11-20T09:00:00.000Z --events 1000 --progress 0 >/dev/null

rc=0
LD_PRELOAD=$FAIL_ALLOC CD_FAIL_ALLOC_SIZE=$((size + 1)) "$CONVDIAG" run --until-caught-up \
  --progress 0 > "$T_WORK/oom.out" 2> "$T_WORK/oom.err" || rc=$?
assert_eq "$rc" 1 "exit code when a message cannot be held"
grep -q "cannot hold the message at $T_TOPIC\[0\]@1000 (out of memory)" "$T_WORK/oom.err" ||
  fail "no reason naming the message: $(tail -3 "$T_WORK/oom.err")"
ok "stopped at the message: $(grep -o 'cannot hold[^"]*' "$T_WORK/oom.err" | head -1)"
assert_eq "$(sql 'SELECT count(*) FROM events WHERE kafka_offset > 1000')" 0 \
  "events stored from after the message"

"$CONVDIAG" run --until-caught-up --progress 0 > "$T_WORK/final.out"
exactly_once 2000
assert_eq "$(sql "SELECT kafka_offset || ' ' || length(payload) FROM dead_letters")" "1000 $size" \
  "the message, read again, kept as a dead letter"
echo "1 passed, 0 failed"
