#!/usr/bin/env bash
# Builds convdiag: build/ (optimized) and, with --asan, build-asan/ (address and
# undefined-behaviour sanitizers, any finding fatal).  Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

setup() {
  local dir=$1
  shift
  [[ -f "$dir/build.ninja" ]] || meson setup "$dir" "$@" >/dev/null
  ninja -C "$dir" >/dev/null
  echo "build: $dir ready"
}

setup "$root/build" --buildtype=release
if [[ "${1:-}" == --asan ]]; then
  setup "$root/build-asan" --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all
fi
