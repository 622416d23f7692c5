#!/usr/bin/env bash
# Builds the local node's images without a registry and writes them as `docker save`-style tars that
# `ctr images import` takes. Prints "NAME=TAR" lines (one per image) on stdout.
#
#   images.sh python   the mediagen and tooling images (buildah, minutes cold)
#   images.sh node     pause and CoreDNS (seconds; needs NODE_ASSETS)
#
#   pause     localhost/pause:3.10          hack/node/pause.c, gcc -static
#   coredns   localhost/coredns:v1.14.7     the CoreDNS binary of hack/build-node.sh
#   mediagen  localhost/mediagen:e2e        the project's Dockerfile, target `runtime` (the product image)
#   demo      localhost/mediagen:e2e-demo   the project's Dockerfile, target `demo` (the chart's demo store; the
#                                           name the chart derives from image.repository and image.tag)
#   tooling   localhost/mediagen-tooling:e2e  hack/node/tooling.Dockerfile: the demo image plus operator/mediagen_dev
#                                           (the fake Replicate, the S3 server, the webhook relay)
#
# The project's Dockerfile is built by Debian's daemonless buildah, with its PYTHON_IMAGE base argument pointing
# at a local image: a debootstrap'd Debian bookworm with python3 and pip (the stand-in for python:3.11-slim;
# both are Debian bookworm with CPython 3.11). The root filesystem, buildah's layer store and the image tars are
# cached under ~/.cache/mediagen/e2e, keyed by their inputs, so a warm run reuses them. Building needs the
# package registries (apt for debootstrap, PyPI for the Dockerfile's `uv sync`) and the host's CA bundle, which
# is mounted into the build's RUN steps only (registries are reached through a TLS-inspecting proxy).
#
# Environment: NODE_ASSETS (hack/build-node.sh's output), DEBIAN_MIRROR (default: the host's apt mirror).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=hack/node/lib.sh
source "$here/lib.sh"

cache=${MEDIAGEN_CACHE:-$HOME/.cache/mediagen}/e2e
store=$cache/buildah
ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
what=${1:?usage: images.sh python|node}
suite=bookworm
packages=python3,python3-pip,python-is-python3,ca-certificates
# Bump when base_image() prepares the root filesystem differently (part of its cache key).
base_recipe=1
mkdir -p "$cache/images" "$store"

exec 8>"$cache/.images.lock"
flock 8

# buildah keeps its layers under our cache; it must not touch the machine's container storage or leave the
# storage's own bind mount behind. Its blob-info cache and network dirs are removed afterwards if it made them.
bah() {
  buildah --root "$store/storage" --runroot "$store/run" --storage-driver overlay \
    --storage-opt overlay.skip_mount_home=true "$@"
}
created_dirs=()
for d in /var/lib/containers /run/containers; do
  [ -e "$d" ] || created_dirs+=("$d")
done
cleanup() {
  bah rm --all >/dev/null 2>&1 || true
  local d
  for d in "${created_dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

hash_of() { sha256sum | cut -c1-16; }

# tree_hash <dir under the repository>: the digests of its files (caches excluded), in a stable order.
tree_hash() {
  (cd "$root" && find "$1" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
}

# The files of the build context, read from .dockerignore's `!` lines (everything else is ignored there).
context_key() {
  (cd "$root" && {
    cat Dockerfile
    sed -n 's/^!//p' .dockerignore | sed 's|/$||' | while read -r path; do tree_hash "$path"; done
  }) | hash_of
}

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
    | grep -m1 -E 'debian/?$|debian ' | awk '$1 == "URIs:" {print $2} $1 == "deb" {print $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

# The base: debootstrap's minimal bookworm with python3, pip and the CA store; pip may install into it (the
# Dockerfile's `pip install uv`, as on python:3.11-slim), and docs/caches are dropped.
base_image() {
  local key tag rootfs
  key=$(printf '%s %s %s\n' "$suite" "$packages" "$base_recipe" | hash_of)
  tag=localhost/python-bookworm:$key
  rootfs=$cache/rootfs-$suite-$key
  if ! bah inspect --type image "$tag" >/dev/null 2>&1; then
    if [ ! -f "$rootfs/.complete" ]; then
      log "debootstrap $suite ($packages) into $rootfs (cached)"
      rm -rf "$rootfs.tmp"
      debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs.tmp" "$(mirror)" >&2
      rm -f "$rootfs.tmp"/usr/lib/python3*/EXTERNALLY-MANAGED
      rm -rf "$rootfs.tmp"/var/cache/apt/* "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/usr/share/doc/* \
        "$rootfs.tmp"/usr/share/man/* "$rootfs.tmp"/usr/share/info/* "$rootfs.tmp"/var/log/*
      touch "$rootfs.tmp/.complete"
      rm -rf "$rootfs" && mv "$rootfs.tmp" "$rootfs"
    fi
    local container mountpoint
    container=$(bah from scratch)
    mountpoint=$(bah mount "$container")
    tar -C "$rootfs" --exclude ./.complete -cf - . | tar -C "$mountpoint" -xf -
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
      --cmd python3 "$container"
    bah commit --quiet --rm "$container" "$tag" >/dev/null
  fi
  echo "$tag"
}

# export <image> <tar>: the image as a docker-archive tar (atomically).
export_image() {
  rm -f "$2.tmp"
  bah push --quiet "$1" "docker-archive:$2.tmp:$1" >/dev/null
  mv "$2.tmp" "$2"
}

# single_file_image <tag> <file> <path in image> <entrypoint json> <tar>
single_file_image() {
  local tag=$1 file=$2 path=$3 entrypoint=$4 tar=$5 container
  [ -f "$tar" ] && return 0
  container=$(bah from scratch)
  bah copy --chmod 0755 "$container" "$file" "$path" >/dev/null
  bah config --entrypoint "$entrypoint" --user 65532:65532 "$container"
  bah commit --quiet --rm "$container" "$tag" >/dev/null
  export_image "$tag" "$tar"
}

# dockerfile_image <tag> <tar> <buildah build args... context>: build with the local base, export.
dockerfile_image() {
  local tag=$1 tar=$2
  shift 2
  [ -f "$tar" ] && return 0
  log "building $tag (buildah)"
  # The host's CA bundle reaches RUN steps as a mount and SSL_CERT_FILE (uv's TLS roots); the finished
  # image gets neither: its config is re-committed without the variable.
  bah build --pull-never --isolation chroot --network host --layers --quiet \
    --build-arg "PYTHON_IMAGE=$base" \
    -v "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro" --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    -t "$tag.build" "$@" >&2
  local container
  container=$(bah from --pull-never "$tag.build")
  bah config --env SSL_CERT_FILE- "$container"
  bah commit --quiet --rm "$container" "$tag" >/dev/null
  export_image "$tag" "$tar"
}

python_images() {
  base=$(base_image)
  local key mediagen_tar demo_tar tooling_tar
  key=$(context_key)
  mediagen_tar=$cache/images/mediagen-$key.tar
  dockerfile_image localhost/mediagen:e2e "$mediagen_tar" --target runtime -f "$root/Dockerfile" "$root"
  demo_tar=$cache/images/mediagen-demo-$key.tar
  dockerfile_image localhost/mediagen:e2e-demo "$demo_tar" --target demo -f "$root/Dockerfile" "$root"
  tooling_tar=$cache/images/tooling-$( (echo "$key"; cat "$here/tooling.Dockerfile"; tree_hash operator/mediagen_dev) | hash_of).tar
  if [ ! -f "$tooling_tar" ]; then
    bah inspect --type image localhost/mediagen:e2e-demo >/dev/null 2>&1 \
      || bah pull --quiet "docker-archive:$demo_tar" >/dev/null
    dockerfile_image localhost/mediagen-tooling:e2e "$tooling_tar" --build-arg DEMO_IMAGE=localhost/mediagen:e2e-demo \
      -f "$here/tooling.Dockerfile" "$root/operator"
  fi
  # Older tars of these images are never used again (their keys name older inputs).
  find "$cache/images" -maxdepth 1 \( -name 'mediagen-*.tar' -o -name 'tooling-*.tar' \) \
    ! -path "$mediagen_tar" ! -path "$demo_tar" ! -path "$tooling_tar" -delete
  echo "mediagen=$mediagen_tar"
  echo "demo=$demo_tar"
  echo "tooling=$tooling_tar"
  echo "mediagen_size_bytes=$(stat -c %s "$mediagen_tar")"
}

node_images() {
  local assets=${NODE_ASSETS:?NODE_ASSETS must point at the node binaries (hack/build-node.sh)}
  local pause_tar coredns_bin coredns_tar
  pause_tar=$cache/images/pause-$(sha256sum "$here/pause.c" | hash_of).tar
  if [ ! -f "$pause_tar" ]; then
    gcc -static -O2 -o "$cache/pause" "$here/pause.c"
    single_file_image "$PAUSE_IMAGE" "$cache/pause" /pause '["/pause"]' "$pause_tar"
  fi
  coredns_bin=$(readlink -f "$assets/coredns")
  coredns_tar=$cache/images/coredns-$(sha256sum "$coredns_bin" | hash_of).tar
  single_file_image "$COREDNS_IMAGE" "$coredns_bin" /coredns '["/coredns"]' "$coredns_tar"
  echo "pause=$pause_tar"
  echo "coredns=$coredns_tar"
}

case $what in
  python) python_images ;;
  node) node_images ;;
  *) die "unknown image set $what (python or node)" ;;
esac
