#!/usr/bin/env bash
# Fuzzes event parsing and validation and the trace context parsers
# (tests/fuzz/fuzz_event.c) for SECONDS seconds (default 60), with
# AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer.
#
#   deploy/local/fuzz.sh [SECONDS]
#
# Configures build-fuzz/ with clang the first time, then only rebuilds.  The
# fuzzer works on a copy of tests/fuzz/corpus/event in a temporary directory,
# so the seed corpus in the repository is left as it is.  Exits with
# libFuzzer's non-zero status on a crash, leak, timeout or out-of-memory, and
# says where the input that reproduces it was saved.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

secs=${1:-60}
if ! [[ "$secs" =~ ^[0-9]+$ ]] || ((secs == 0)); then
  echo "usage: $0 [SECONDS]  (a whole number of seconds > 0, default 60)" >&2
  exit 2
fi

dir="$root/build-fuzz"
exe="$dir/tests/fuzz/fuzz_event"
dict="$root/tests/fuzz/event.dict"
seeds="$root/tests/fuzz/corpus/event"

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
if ! out=$(ninja -C "$dir" tests/fuzz/fuzz_event 2>&1); then
  printf '%s\n' "$out" >&2
  echo "fuzz: building $exe failed (is $dir configured with -Dfuzz=true?)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/convdiag-fuzz.XXXXXX")
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
log="$work/fuzz.log"
echo "fuzz: fuzz_event for $secs s on $(find "$work/corpus" -type f | wc -l) seeds (log: $log)"

# halt_on_error/abort_on_error=0: every report ends the run through libFuzzer,
# which saves the input and sets the exit status.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

start=$(date +%s)
rc=0
"$exe" -max_total_time="$secs" -dict="$dict" -print_final_stats=1 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1 || rc=$?
elapsed=$(($(date +%s) - start))

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
runs=$(stat number_of_executed_units)
speed=$(stat average_exec_per_sec)
cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2 || true)

if ((rc == 0)); then
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::)' "$log" || true
  echo "fuzz: ${runs:-?} runs in $elapsed s (${speed:-?} exec/s, cov ${cov:-?}), no crash"
  rm -rf "$work"
  exit 0
fi

# The report (sanitizer or invariant) and where libFuzzer saved the input.
artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
kind=$(basename "${artifact:-unknown-}")
kind=${kind%%-*}
# From the first line of the report (sanitizer, broken invariant, libFuzzer's own), else the
# end of the log.
first=$(grep -nE '^==[0-9]+==|^fuzz_event: invariant|runtime error:|^ALARM:|out-of-memory' "$log" |
  head -n 1 | cut -d: -f1 || true)
echo "---- report ----"
if [[ -n "$first" ]]; then tail -n "+$first" "$log" | head -n 100; else tail -n 60 "$log"; fi
echo "----------------"
if [[ -n "$artifact" ]]; then
  echo "fuzz: FAILED ($kind) after ${runs:-?} runs in $elapsed s, exit status $rc"
  echo "fuzz: reproducer: $artifact"
  echo "fuzz: replay with: $exe $artifact"
else
  echo "fuzz: FAILED after $elapsed s, exit status $rc, no reproducer written; log: $log"
fi
exit "$rc"
