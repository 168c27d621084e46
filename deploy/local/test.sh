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

rc=0
echo "== fuzzing event parsing and trace context for ${CD_FUZZ_SECONDS:-60} s"
"$here/fuzz.sh" "${CD_FUZZ_SECONDS:-60}" || rc=1
echo "== tests, optimized build"
meson test -C "$root/build" --print-errorlogs || rc=1
echo "== tests, sanitizer build (address, undefined)"
meson test -C "$root/build-asan" --print-errorlogs || rc=1
exit "$rc"
