#!/usr/bin/env bash
# Builds what a one-node cluster needs besides the control plane, into the same per-user cache outside the
# checkout: kubelet, kube-controller-manager, kube-scheduler and kube-proxy from hack/tools/k8s (with
# kube-apiserver and kubectl, in one `go build` call when they are missing too; see build-controlplane.sh), etcd,
# and CoreDNS from hack/tools/coredns (its own module: a CoreDNS with the cluster-DNS plugins and no `forward`).
# Binaries are built only when missing. Prints the directory that holds links to all of them.
set -euo pipefail

K8S_VERSION=v1.36.3
COREDNS_VERSION=v1.14.7
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${MEDIAGEN_CACHE:-$HOME/.cache/mediagen}
coredns_out=$cache/coredns-$COREDNS_VERSION/coredns
assets=$cache/node-assets-$K8S_VERSION-$COREDNS_VERSION

controlplane=$("$here/build-controlplane.sh" --with-node)
k8s_out=$(dirname "$(readlink -f "$controlplane/kube-apiserver")")

export GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.build-coredns.lock"
  flock 9
fi
if [ ! -x "$coredns_out" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "error: the Go toolchain (go >= 1.26) is needed to build CoreDNS $COREDNS_VERSION." >&2
    exit 3
  fi
  echo "building coredns $COREDNS_VERSION into $(dirname "$coredns_out") (first run only; takes minutes)..." >&2
  mkdir -p "$(dirname "$coredns_out")"
  ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  if ! (cd "$here/tools/coredns" && go build -trimpath -ldflags "$ldflags" -o "$coredns_out.tmp" .) >&2; then
    echo "error: building CoreDNS failed; see the go output above." >&2
    rm -f "$coredns_out.tmp"
    exit 4
  fi
  mv "$coredns_out.tmp" "$coredns_out"   # atomic: an interrupted build never leaves a half-written binary behind
fi

mkdir -p "$assets"
for name in kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy; do
  ln -sf "$k8s_out/$name" "$assets/$name"
done
ln -sf "$(readlink -f "$controlplane/etcd")" "$assets/etcd"
ln -sf "$coredns_out" "$assets/coredns"
echo "$assets"
