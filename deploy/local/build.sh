#!/usr/bin/env bash
# Builds convdiag: build/ (optimized) and, with --asan, build-asan/ (address and
# undefined-behaviour sanitizers, any finding fatal).  Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

setup() {
  local dir=$1
  shift
  local log="$dir.log"
  if [[ ! -f "$dir/build.ninja" ]] && ! meson setup "$dir" "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "build: meson setup of $dir failed" >&2
    exit 1
  fi
  if ! ninja -C "$dir" >"$log" 2>&1; then
    cat "$log" >&2
    echo "build: $dir failed" >&2
    exit 1
  fi
  echo "build: $dir ready"
}

setup "$root/build" --buildtype=release
if [[ "${1:-}" == --asan ]]; then
  setup "$root/build-asan" --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all
fi
