#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl from the pinned Go tools modules in hack/tools/
# into a per-user cache outside the checkout, so a fresh clone on the same machine reuses them.
# Binaries are built only when missing. Prints the directory that holds the three binaries.
#
# --with-node also builds kubelet, kube-controller-manager, kube-scheduler and kube-proxy (hack/build-node.sh,
# make e2e). All Kubernetes binaries that are missing are built by one `go build` call: they share most
# packages, and one call schedules them across the cores and links them without a second pass over the graph.
set -euo pipefail

with_node=0
for arg in "$@"; do
  case $arg in
    --with-node) with_node=1 ;;
    *) echo "usage: $0 [--with-node]" >&2; exit 2 ;;
  esac
done

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${MEDIAGEN_CACHE:-$HOME/.cache/mediagen}
k8s_out=$cache/k8s-$K8S_VERSION
etcd_out=$cache/etcd-$ETCD_VERSION
assets=$cache/assets-$K8S_VERSION-$ETCD_VERSION

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "error: the Go toolchain (go >= 1.26) is needed to build etcd and kube-apiserver." >&2
    echo "       Install Go, or point KUBEBUILDER_ASSETS at a folder holding etcd, kube-apiserver and kubectl." >&2
    exit 3
  fi
}

# A go.mod with replace lines must be built in module mode; a user's GOFLAGS=-mod=vendor would break it.
export GOFLAGS=-mod=mod CGO_ENABLED=0

minor=$(echo "$K8S_VERSION" | cut -d. -f2)
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

build() {  # build <module dir> <package> <output>
  local dir=$1 pkg=$2 out=$3
  [ -x "$out" ] && return 0
  require_go
  echo "building $(basename "$out") into $(dirname "$out") (first run only; takes minutes)..." >&2
  mkdir -p "$(dirname "$out")"
  if ! (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg") >&2; then
    echo "error: building $pkg failed; see the go output above." >&2
    rm -f "$out.tmp"
    exit 4
  fi
  mv "$out.tmp" "$out"   # atomic: an interrupted build never leaves a half-written binary behind
}

build_k8s() {  # build_k8s <command name>...: the missing ones, in one go build call
  local name missing=() packages=()
  for name in "$@"; do
    [ -x "$k8s_out/$name" ] || missing+=("$name")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  require_go
  for name in "${missing[@]}"; do packages+=("k8s.io/kubernetes/cmd/$name"); done
  echo "building ${missing[*]} into $k8s_out (first run only; takes minutes)..." >&2
  local tmp=$k8s_out/.build.$$
  rm -rf "$tmp" && mkdir -p "$tmp"
  if ! (cd "$here/tools/k8s" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${packages[@]}") >&2; then
    echo "error: building ${missing[*]} failed; see the go output above." >&2
    rm -rf "$tmp"
    exit 4
  fi
  for name in "${missing[@]}"; do
    mv "$tmp/$name" "$k8s_out/$name"   # atomic: an interrupted build never leaves a half-written binary behind
  done
  rm -rf "$tmp"
}

# Parallel test runs on one machine (pytest-xdist workers, CI jobs) must not build the same
# binary at once; the second waits here and then finds the binaries already built.
mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.build.lock"
  flock 9
fi

build "$here/tools/etcd" go.etcd.io/etcd/server/v3 "$etcd_out/etcd"
k8s_commands=(kube-apiserver kubectl)
if [ "$with_node" = 1 ]; then
  k8s_commands+=(kubelet kube-controller-manager kube-scheduler kube-proxy)
fi
build_k8s "${k8s_commands[@]}"

mkdir -p "$assets"
ln -sf "$etcd_out/etcd" "$assets/etcd"
ln -sf "$k8s_out/kube-apiserver" "$assets/kube-apiserver"
ln -sf "$k8s_out/kubectl" "$assets/kubectl"
echo "$assets"
