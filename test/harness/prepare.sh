#!/usr/bin/env bash
# Installs what the local cluster needs on this machine (Debian packages), then
# builds or reuses the cached binaries and the Prepull image. Idempotent: quiet
# when all is there.
#   prepare.sh         everything (the cluster's binaries and the image)
#   prepare.sh image   only the Prepull image (npm run image); prints its archive's path
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
  binutils                     # strip: Node in the image, amd64
  binutils-aarch64-linux-gnu   # and arm64
  buildah                      # assembles the Prepull image (no Docker engine)
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
if [[ "${1:-}" == image ]]; then
  bash "$here/../../scripts/build-image.sh"; exit
fi
bash "$here/build.sh"
# The node-side binaries the agent image carries (cached by source hash).
bash "$here/../../scripts/build-hold.sh" >/dev/null
bash "$here/../../scripts/build-importer.sh" >/dev/null
# The Argo CD / kstatus health checker the GitOps tests run (cached by source hash).
bash "$here/../../scripts/build-gitops-health.sh" >/dev/null
# The Prepull image, with hold and prepull-import inside (each cached by the content of its inputs).
bash "$here/../../scripts/build-image.sh" >/dev/null
