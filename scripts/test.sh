#!/usr/bin/env bash
# The whole suite: lint, type check, then every vitest tier (unit, then the
# cluster tiers on a real kube-apiserver, kubelet, containerd and registry),
# then the import and registry-mirror node tiers once more on Debian's containerd 1.6.
# Builds and installs what it needs on the first run; later runs use the cache.
# Arguments go to vitest. Arguments that pick tests (anything but reporter and
# output options) narrow the run to them, in one lane, and skip the containerd
# 1.6 pass.
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

status=0
if [[ "$narrowed" == true ]]; then
  echo "[test] vitest" >&2
  PREPULL_TEST_WHOLE_SUITE=0 node node_modules/vitest/vitest.mjs run "$@" || status=$?
  exit "$status"
fi

# The whole suite, in three lanes at once (vitest.config.ts says which file runs
# where): the unit project, and the kwok lane (cluster tiers with no real node,
# on a cluster of its own), both in the background with their output kept for
# the end; and the node lane, then the import and mirror node tiers again on
# containerd 1.6. Within a vitest run, a 2-core machine gets one worker, so the
# unit project in the node lane's run would come before its cluster tiers and
# add its whole time to the longest lane. The kwok lane's last file,
# test/rbac/least-privilege.test.ts, checks both cluster lanes' audit logs: it
# waits for the node lane's first pass.
kwok_lane=(--project cluster)
unit_lane=(--project unit)
for arg in "${second[@]}"; do
  case "$arg" in
    --outputFile.json=*)
      kwok_lane+=("${arg%.containerd16.json}.kwok.json")
      unit_lane+=("${arg%.containerd16.json}.unit.json")
      ;;
    *)
      kwok_lane+=("$arg")
      unit_lane+=("$arg")
      ;;
  esac
done
node_cluster="${PREPULL_TEST_CLUSTER_NAME:-test}"
node_port="${PREPULL_TEST_BASE_PORT:-23790}"
lane_dir="$(mktemp -d)"
trap 'rm -rf "$lane_dir"' EXIT
echo "[test] vitest, kwok lane (no real node), in the background" >&2
# The next block of ten ports, beside the node lane's cluster.
PREPULL_TEST_LANE=kwok PREPULL_TEST_REAL_NODE=0 PREPULL_TEST_CLUSTER_NAME="$node_cluster-kwok" \
  PREPULL_TEST_BASE_PORT=$((node_port + 10)) PREPULL_TEST_WHOLE_SUITE=1 \
  PREPULL_TEST_OTHER_AUDIT_LOG="/tmp/prepull-$node_cluster/audit.log" \
  PREPULL_TEST_OTHER_LANE_DONE="$lane_dir/node-done" \
  node node_modules/vitest/vitest.mjs run "${kwok_lane[@]}" >"$lane_dir/kwok.log" 2>&1 &
kwok_pid=$!
echo "[test] vitest, unit project, in the background" >&2
node node_modules/vitest/vitest.mjs run "${unit_lane[@]}" >"$lane_dir/unit.log" 2>&1 &
unit_pid=$!
# Interrupted, this script takes the lanes with it.
trap 'kill "$kwok_pid" "$unit_pid" 2>/dev/null || true; rm -rf "$lane_dir"' EXIT

echo "[test] vitest, node lane (containerd 2.x on the real node)" >&2
PREPULL_TEST_LANE=node PREPULL_TEST_WHOLE_SUITE=1 node node_modules/vitest/vitest.mjs run --project cluster "$@" ||
  status=$?
touch "$lane_dir/node-done"
echo "[test] vitest: the import, registry-mirror node and node-credentials tiers again, on containerd 1.6" >&2
# A cluster of another name: the first one's audit log stays for the kwok lane's check.
# 1.6 reads hosts.toml with its own parser (a file without [host] is refused): the mirror tiers run on it too.
mirror_node_tiers=(test/registrymirror/{real-node,node-files,sandbox-image,config-path-not-set}.test.ts)
# RegistryCredential spec.nodes: the kubelet hands config.json's credentials to 1.6's CRI the same way (about 30 s).
node_credentials_tier=test/registrycredential/node-credentials.test.ts
PREPULL_TEST_RUNTIME=containerd16 PREPULL_TEST_CLUSTER_NAME="$node_cluster-containerd16" \
  node node_modules/vitest/vitest.mjs run --project cluster test/import "${mirror_node_tiers[@]}" "$node_credentials_tier" \
  "${second[@]}" ||
  status=$?

unit_status=0
wait "$unit_pid" || unit_status=$?
echo "[test] vitest, unit project: its output" >&2
cat "$lane_dir/unit.log"
if [[ "$unit_status" -ne 0 ]]; then status=$unit_status; fi
kwok_status=0
wait "$kwok_pid" || kwok_status=$?
echo "[test] vitest, kwok lane (no real node): its output" >&2
cat "$lane_dir/kwok.log"
if [[ "$kwok_status" -ne 0 ]]; then status=$kwok_status; fi
exit "$status"
