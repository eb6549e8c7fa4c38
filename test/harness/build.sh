#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy and caches them
# outside the repository, keyed by version, so a second run builds nothing.
#   PREPULL_CACHE   cache root (default ~/.cache/prepull)
# Prints one line per component; a component already cached costs nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${PREPULL_CACHE:-$HOME/.cache/prepull}"
mkdir -p "$cache"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
jobs="${PREPULL_BUILD_JOBS:-$(nproc)}"

log() { printf '[build] %s\n' "$*" >&2; }

# wrapper_module DIR MODULE VERSION PACKAGES...: a throwaway module that requires
# MODULE so its commands build as dependencies (go install pkg@v refuses modules
# with replace directives, which Kubernetes and etcd have).
wrapper_module() {
  local dir="$1" mod="$2" ver="$3"; shift 3
  mkdir -p "$dir"
  (cd "$dir"
    go mod init prepull.local/build >/dev/null 2>&1
    go mod edit -require="$mod@$ver"
    { echo '//go:build tools'; echo 'package tools'; echo 'import ('
      for p in "$@"; do echo "  _ \"$p\""; done; echo ')'; } > tools.go)
}

# done_marker DIR: a component is complete only when its marker exists, so an
# interrupted build is redone rather than trusted.
# kubernetes_commands OUT CMD...: builds commands of k8s.io/kubernetes at
# KUBERNETES_VERSION into OUT (one Go build, so they share its cache).
# A subshell, so its clean-up trap is its own.
kubernetes_commands() (
  local out="$1"; shift
  local work; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  local gomod minor patch
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  IFS=. read -r _ minor patch <<<"${KUBERNETES_VERSION#v}"
  local cmds=("$@")
  local pkgs=(); for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  wrapper_module "$work" k8s.io/kubernetes "$KUBERNETES_VERSION" "${pkgs[@]}"
  # Every staging module is replaced by its published v0.<minor>.<patch> twin;
  # the list changes between releases, so it is read from the release's go.mod.
  local m
  for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
    (cd "$work" && go mod edit -replace="$m=$m@v0.$minor.$patch")
  done
  (cd "$work" && go mod tidy >/dev/null)
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  mkdir -p "$work/out"
  (cd "$work" && go build -p "$jobs" -trimpath -ldflags "$ld" -o out/ "${pkgs[@]}")
  rm -rf "$out"; mkdir -p "$out"; mv "$work"/out/* "$out"/; touch "$out/.complete"
)

build_kubernetes() {
  local out="$cache/kubernetes-$KUBERNETES_VERSION"
  [[ -f "$out/.complete" ]] && { log "kubernetes $KUBERNETES_VERSION cached"; return; }
  log "kubernetes $KUBERNETES_VERSION: building kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl (about 10 minutes on 2 cores)"
  kubernetes_commands "$out" kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
  log "kubernetes $KUBERNETES_VERSION built"
}

# kube-proxy, from the same source: the real node's Services (the `kubernetes`
# Service the operator's in-cluster configuration uses). Its own cache entry,
# so adding it rebuilt nothing else.
build_kubeproxy() {
  local out="$cache/kube-proxy-$KUBERNETES_VERSION"
  [[ -f "$out/.complete" ]] && { log "kube-proxy $KUBERNETES_VERSION cached"; return; }
  log "kube-proxy $KUBERNETES_VERSION: building"
  kubernetes_commands "$out" kube-proxy
  log "kube-proxy $KUBERNETES_VERSION built"
}

build_etcd() {
  local out="$cache/etcd-$ETCD_VERSION"
  [[ -f "$out/.complete" ]] && { log "etcd $ETCD_VERSION cached"; return; }
  log "etcd $ETCD_VERSION: building"
  local work; work="$(mktemp -d)"; trap 'rm -rf "$work"' RETURN
  wrapper_module "$work" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  (cd "$work" && go mod tidy >/dev/null && go build -p "$jobs" -trimpath -ldflags "-s -w" -o etcd go.etcd.io/etcd/server/v3)
  rm -rf "$out"; mkdir -p "$out"; mv "$work/etcd" "$out/etcd"; touch "$out/.complete"
  log "etcd $ETCD_VERSION built"
}

build_kwok() {
  local out="$cache/kwok-$KWOK_VERSION"
  [[ -f "$out/.complete" ]] && { log "kwok $KWOK_VERSION cached"; return; }
  log "kwok $KWOK_VERSION: building"
  local work; work="$(mktemp -d)"; trap 'rm -rf "$work"' RETURN
  GOBIN="$work" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  rm -rf "$out"; mkdir -p "$out"; mv "$work/kwok" "$out/kwok"; touch "$out/.complete"
  log "kwok $KWOK_VERSION built"
}

build_containerd() {
  local out="$cache/containerd-$CONTAINERD_VERSION"
  [[ -f "$out/.complete" ]] && { log "containerd $CONTAINERD_VERSION cached"; return; }
  log "containerd $CONTAINERD_VERSION: building containerd, containerd-shim-runc-v2, ctr"
  local work; work="$(mktemp -d)"; trap 'rm -rf "$work"' RETURN
  local c
  for c in containerd containerd-shim-runc-v2 ctr; do
    GOBIN="$work" go install -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w" \
      "github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION"
  done
  rm -rf "$out"; mkdir -p "$out"; mv "$work"/* "$out"/; touch "$out/.complete"
  log "containerd $CONTAINERD_VERSION built"
}

# helm: the chart's lint, template and dry-run tests (deploy/chart).
build_helm() {
  local out="$cache/helm-$HELM_VERSION"
  [[ -f "$out/.complete" ]] && { log "helm $HELM_VERSION cached"; return; }
  log "helm $HELM_VERSION: building"
  local work; work="$(mktemp -d)"; trap 'rm -rf "$work"' RETURN
  GOBIN="$work" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  rm -rf "$out"; mkdir -p "$out"; mv "$work/helm" "$out/helm"; touch "$out/.complete"
  log "helm $HELM_VERSION built"
}

# distribution's contrib/token-server: a real issuer of registry bearer tokens
# (htpasswd users, JWTs the registry's `auth: token` verifies), about 30 s.
build_tokenserver() {
  local out="$cache/tokenserver-$TOKENSERVER_VERSION"
  [[ -f "$out/.complete" ]] && { log "token-server $TOKENSERVER_VERSION cached"; return; }
  log "token-server $TOKENSERVER_VERSION: building (distribution's contrib/token-server)"
  local work; work="$(mktemp -d)"; trap 'rm -rf "$work"' RETURN
  local pkg=github.com/docker/distribution/contrib/token-server
  wrapper_module "$work" github.com/docker/distribution "$TOKENSERVER_VERSION" "$pkg"
  (cd "$work" && go mod tidy >/dev/null && go build -p "$jobs" -trimpath -ldflags "-s -w" -o token-server "$pkg")
  rm -rf "$out"; mkdir -p "$out"; mv "$work/token-server" "$out/token-server"; touch "$out/.complete"
  log "token-server $TOKENSERVER_VERSION built"
}

# crictl (cri-tools): CRI pulls against a containerd a tier starts beside the node's, about 2 minutes.
build_crictl() {
  local out="$cache/crictl-$CRICTL_VERSION"
  [[ -f "$out/.complete" ]] && { log "crictl $CRICTL_VERSION cached"; return; }
  log "crictl $CRICTL_VERSION: building"
  local work; work="$(mktemp -d)"; trap 'rm -rf "$work"' RETURN
  GOBIN="$work" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  rm -rf "$out"; mkdir -p "$out"; mv "$work/crictl" "$out/crictl"; touch "$out/.complete"
  log "crictl $CRICTL_VERSION built"
}

targets=("$@"); [[ ${#targets[@]} -gt 0 ]] || targets=(etcd kwok containerd kubernetes kubeproxy helm tokenserver crictl)
for t in "${targets[@]}"; do "build_$t"; done
