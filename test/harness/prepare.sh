#!/usr/bin/env bash
# Installs what the local cluster needs on this machine (Debian packages), then
# builds or reuses the cached binaries. Idempotent: quiet when all is there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Package -> why.
packages=(
  openssl                      # the cluster's certificates
  runc                         # the real node's OCI runtime
  containerd                   # containerd 1.6: the second runtime the import tier runs on
  containernetworking-plugins  # bridge, host-local, loopback CNI plugins
  iproute2                     # removing the CNI bridge on teardown
  iptables                     # the bridge plugin
  tar                          # image layers and archives
  docker-registry              # the password-protected test registry
  apache2-utils                # htpasswd (bcrypt) for it
  skopeo                       # pushing test images to it
  musl-tools                   # the static amd64 hold binary
  gcc-aarch64-linux-gnu        # the static arm64 hold binary
  libc6-dev-arm64-cross
  qemu-user-static             # runs the arm64 hold binary in its test
  busybox-static               # the shell of the `shell` test image
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "[prepare] installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Debian's containerd would start a service where an init system exists; ours runs its own.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash "$here/build.sh"
# The node-side binaries the agent image carries (cached by source hash).
bash "$here/../../scripts/build-hold.sh" >/dev/null
bash "$here/../../scripts/build-importer.sh" >/dev/null
# The Argo CD / kstatus health checker the GitOps tests run (cached by source hash).
bash "$here/../../scripts/build-gitops-health.sh" >/dev/null
