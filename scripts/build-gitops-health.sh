#!/usr/bin/env bash
# Builds gitops-health (test/gitops/health: Argo CD's Lua engine and Flux's
# kstatus over Prepull's objects) into a cache keyed by the source's hash, and
# prints the binary's path. Modules come from the Go module proxy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/test/gitops/health"
hash="$( (cat "$src/go.mod" "$src/go.sum" "$src"/*.go; echo "$0 v1") | sha256sum | cut -c1-16)"
out="${PREPULL_CACHE:-$HOME/.cache/prepull}/gitops-health-$hash"
if [[ ! -f "$out/.complete" ]]; then
  mkdir -p "$out"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false nice -n 10 go build -trimpath -ldflags "-s -w" -o "$out/gitops-health" .) >&2
  touch "$out/.complete"
fi
echo "$out/gitops-health"
