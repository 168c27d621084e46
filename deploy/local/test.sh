#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, builds
# (optimized and with sanitizers), fuzzes the parsers for a bounded time
# (CD_FUZZ_SECONDS, default 60), starts the local stack (real PostgreSQL and
# Kafka on 127.0.0.1), runs unit and integration tests on both builds, and
# stops the stack again if it started it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR
. "$here/env.sh"

"$here/install.sh"
"$here/build.sh" --asan

started=0
if ! "$here/stack.sh" status >/dev/null 2>&1; then
  CD_SKIP_INSTALL=1 "$here/stack.sh" up
  started=1
fi
stop_stack() {
  if ((started)); then "$here/stack.sh" down >"$CD_STACK_DIR/stack-down.log" 2>&1 || true; fi
}
trap stop_stack EXIT

export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

rc=0 passed=0 failed=0
# Adds a meson test run's counts (its "Ok:", "Fail:", "Timeout:" ... lines) to the totals.
count() {
  local ok bad
  ok=$(awk '/^(Ok|Expected Fail):/ {n += $NF} END {print n + 0}' "$1")
  bad=$(awk '/^(Fail|Unexpected Pass|Timeout):/ {n += $NF} END {print n + 0}' "$1")
  passed=$((passed + ok)) failed=$((failed + bad))
}
log=$(mktemp)

echo "== fuzzing event parsing, trace context, the export parsers and the emulator's JSON parser for ${CD_FUZZ_SECONDS:-60} s"
if "$here/fuzz.sh" "${CD_FUZZ_SECONDS:-60}"; then passed=$((passed + 1)); else rc=1 failed=$((failed + 1)); fi
echo "== tests, optimized build"
meson test -C "$root/build" --print-errorlogs | tee "$log" || rc=1
count "$log"
echo "== tests, sanitizer build (address, undefined)"
meson test -C "$root/build-asan" --print-errorlogs | tee "$log" || rc=1
count "$log"
rm -f "$log"
((failed == 0)) || rc=1
echo "tests: $passed passed, $failed failed"
exit "$rc"
