#!/usr/bin/env bash
# Builds the static hold binary for amd64 and arm64 into a cache keyed by the
# source's hash, and prints the directory. Nothing is downloaded: musl-gcc
# (Debian musl-tools) for amd64 and Debian's aarch64 cross gcc for arm64.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/src/agent/hold/hold.c"
hash="$( (cat "$src"; echo "$0 v1") | sha256sum | cut -c1-16)"
out="${PREPULL_CACHE:-$HOME/.cache/prepull}/hold-$hash"
if [[ ! -f "$out/.complete" ]]; then
  mkdir -p "$out"
  flags=(-static -Os -s -Wall -Wextra -Werror -o)
  musl-gcc "${flags[@]}" "$out/hold-amd64" "$src"
  aarch64-linux-gnu-gcc "${flags[@]}" "$out/hold-arm64" "$src"
  touch "$out/.complete"
fi
echo "$out"
