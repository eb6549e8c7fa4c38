#!/usr/bin/env bash
# Runs the operator. With $KUBECONFIG (or ~/.kube/config) it uses that cluster;
# with none it builds and starts the embedded local cluster first.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -z "${KUBECONFIG:-}" && ! -f "$HOME/.kube/config" ]]; then
  bash test/harness/prepare.sh
fi
exec node src/cli/main.ts run "$@"
