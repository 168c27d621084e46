#!/usr/bin/env bash
# Fuzzes the parsers for SECONDS seconds in all (default 60), with
# AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer: half the
# time event parsing and validation and the trace context parsers
# (tests/fuzz/fuzz_event.c), a quarter what the export path reads from outside
# (tests/fuzz/fuzz_export.c: connection string, the ingestion service's
# answers, Retry-After, the bearer token, attributes in an envelope), a
# quarter the emulator's plain JSON parser against cJSON
# (tests/fuzz/fuzz_emulator.c); each target gets a second at least.
#
#   deploy/local/fuzz.sh [SECONDS]
#
# Configures build-fuzz/ with clang the first time, then only rebuilds.  Each
# target works on a copy of its seed corpus (tests/fuzz/corpus/NAME) in a
# temporary directory, so the seed corpora in the repository are left as they
# are.  Every target runs even when one fails; exits with the first non-zero
# libFuzzer status on a crash, leak, timeout or out-of-memory, and says for
# each failure where the input that reproduces it was saved.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

secs=${1:-60}
if ! [[ "$secs" =~ ^[0-9]+$ ]] || ((secs == 0)); then
  echo "usage: $0 [SECONDS]  (a whole number of seconds > 0, default 60)" >&2
  exit 2
fi

dir="$root/build-fuzz"
# Split the time without ever passing 0, which libFuzzer reads as "no limit".
export_secs=$((secs / 4))
((export_secs > 0)) || export_secs=1
emulator_secs=$export_secs
event_secs=$((secs - export_secs - emulator_secs))
((event_secs > 0)) || event_secs=1

if [[ ! -f "$dir/build.ninja" ]]; then
  # -fsanitize=fuzzer-no-link: coverage instrumentation for the whole library;
  # -fno-sanitize-recover=all: undefined behaviour stops the run like a crash.
  if ! out=$(CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false "-Dc_args=['-fsanitize=fuzzer-no-link','-fno-sanitize-recover=all']" \
    "-Dc_link_args=['-fno-sanitize-recover=all']" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "fuzz: meson setup of $dir failed" >&2
    exit 1
  fi
fi
if ! out=$(ninja -C "$dir" tests/fuzz/fuzz_event tests/fuzz/fuzz_export tests/fuzz/fuzz_emulator \
  2>&1); then
  printf '%s\n' "$out" >&2
  echo "fuzz: building the targets in $dir/tests/fuzz failed" \
    "(is $dir configured with -Dfuzz=true?)" >&2
  exit 1
fi

# halt_on_error/abort_on_error=0: every report ends the run through libFuzzer,
# which saves the input and sets the exit status.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

# fuzz_one NAME SECONDS: runs target NAME on a copy of corpus/NAME with NAME.dict
# (NAME without its fuzz_ prefix); returns libFuzzer's status.
fuzz_one() {
  local name=$1 t=$2 short=${1#fuzz_}
  local exe="$dir/tests/fuzz/$name" dict="$root/tests/fuzz/$short.dict"
  local seeds="$root/tests/fuzz/corpus/$short"
  local work log start elapsed rc=0
  work=$(mktemp -d "${TMPDIR:-/tmp}/convdiag-$name.XXXXXX") || return 1
  mkdir -p "$work/corpus" "$work/artifacts" || return 1
  cp "$seeds"/* "$work/corpus/" || return 1
  log="$work/fuzz.log"
  echo "fuzz: $name for $t s on $(find "$work/corpus" -type f | wc -l) seeds (log: $log)"

  start=$(date +%s)
  "$exe" -max_total_time="$t" -dict="$dict" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))

  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  local runs speed cov
  runs=$(stat number_of_executed_units)
  speed=$(stat average_exec_per_sec)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2 || true)

  if ((rc == 0)); then
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::)' "$log" || true
    echo "fuzz: $name: ${runs:-?} runs in $elapsed s (${speed:-?} exec/s, cov ${cov:-?}), no crash"
    rm -rf "$work"
    return 0
  fi

  # The report (sanitizer or invariant) and where libFuzzer saved the input.
  local artifact kind first
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  kind=$(basename "${artifact:-unknown-}")
  kind=${kind%%-*}
  # From the first line of the report (sanitizer, broken invariant, libFuzzer's own), else
  # the end of the log.
  first=$(grep -nE '^==[0-9]+==|^fuzz_[a-z]+: invariant|runtime error:|^ALARM:|out-of-memory' \
    "$log" | head -n 1 | cut -d: -f1 || true)
  echo "---- $name report ----"
  if [[ -n "$first" ]]; then tail -n "+$first" "$log" | head -n 100; else tail -n 60 "$log"; fi
  echo "----------------"
  if [[ -n "$artifact" ]]; then
    echo "fuzz: $name FAILED ($kind) after ${runs:-?} runs in $elapsed s, exit status $rc"
    echo "fuzz: reproducer: $artifact"
    echo "fuzz: replay with: $exe $artifact"
  else
    echo "fuzz: $name FAILED after $elapsed s, exit status $rc, no reproducer written; log: $log"
  fi
  return "$rc"
}

status=0
for target in "fuzz_event $event_secs" "fuzz_export $export_secs" \
  "fuzz_emulator $emulator_secs"; do
  rc=0
  # shellcheck disable=SC2086 # name and seconds, split on purpose
  fuzz_one $target || rc=$?
  ((status != 0)) || status=$rc
done
exit "$status"
