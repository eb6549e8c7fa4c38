#!/usr/bin/env bash
# The whole suite: lint, type check, then every vitest tier (unit, then the
# cluster tiers on a real kube-apiserver, kubelet, containerd and registry),
# then the import tier once more on Debian's containerd 1.6.
# Builds and installs what it needs on the first run; later runs use the cache.
# Arguments go to vitest. Arguments that pick tests (anything but reporter and
# output options) narrow the run to them and skip the containerd 1.6 pass.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "[test] lint and format (biome)" >&2
biome ci --reporter=summary .
echo "[test] type check (tsc)" >&2
tsc -p tsconfig.json
bash test/harness/prepare.sh

narrowed=false
second=()
for arg in "$@"; do
  case "$arg" in
    --reporter=*) second+=("$arg") ;;
    # The second pass writes its own report next to the first: NAME.containerd16.json.
    --outputFile.json=*) second+=("${arg%.json}.containerd16.json") ;;
    --outputFile=* | --outputFile.*) second+=("$arg") ;;
    *) narrowed=true ;;
  esac
done

echo "[test] vitest (containerd 2.x on the real node)" >&2
status=0
# The whole suite: test/rbac/least-privilege.test.ts (run last) checks its audit log.
whole=0; [[ "$narrowed" == false ]] && whole=1
PREPULL_TEST_WHOLE_SUITE=$whole node node_modules/vitest/vitest.mjs run "$@" || status=$?
if [[ "$narrowed" == false ]]; then
  echo "[test] vitest: the import tier again, on containerd 1.6" >&2
  PREPULL_TEST_RUNTIME=containerd16 node node_modules/vitest/vitest.mjs run --project cluster test/import "${second[@]}" || status=$?
fi
exit "$status"
