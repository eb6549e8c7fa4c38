#!/usr/bin/env bash
# The whole suite: lint, type check, then every vitest tier (unit, then the
# cluster tiers on a real kube-apiserver, kubelet, containerd and registry).
# Builds and installs what it needs on the first run; later runs use the cache.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "[test] lint and format (biome)" >&2
biome ci --reporter=summary .
echo "[test] type check (tsc)" >&2
tsc -p tsconfig.json
bash test/harness/prepare.sh
echo "[test] vitest" >&2
exec node node_modules/vitest/vitest.mjs run "$@"
