#!/usr/bin/env bash
# Builds helm from the pinned Go tools module in hack/tools/helm/ into a per-user cache outside the
# checkout (next to the control-plane binaries), so a fresh clone on the same machine reuses it.
# Built only when missing. Prints the path of the helm binary.
set -euo pipefail

HELM_VERSION=v3.22.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${MEDIAGEN_CACHE:-$HOME/.cache/mediagen}
out=$cache/helm-$HELM_VERSION/helm

if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (go >= 1.26) is needed to build helm $HELM_VERSION." >&2
  echo "       Install Go, or install helm $HELM_VERSION yourself and put it on PATH." >&2
  exit 3
fi

# A tools module must be built in module mode; a user's GOFLAGS=-mod=vendor would break it.
export GOFLAGS=-mod=mod CGO_ENABLED=0

# Parallel test runs on one machine must not build the same binary at once; the second waits
# here and then finds helm already built.
mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.build-helm.lock"
  flock 9
fi

if [ ! -x "$out" ]; then
  # The Kubernetes version helm assumes without a cluster (helm template, helm lint) follows the
  # client-go it was built with, as helm's own Makefile does.
  client_go=$(cd "$here/tools/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)
  k8s_minor=$(echo "$client_go" | cut -d. -f2)
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
 -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  echo "building helm $HELM_VERSION into $(dirname "$out") (first run only; takes a few minutes)..." >&2
  mkdir -p "$(dirname "$out")"
  if ! (cd "$here/tools/helm" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" helm.sh/helm/v3/cmd/helm) >&2; then
    echo "error: building helm failed; see the go output above." >&2
    rm -f "$out.tmp"
    exit 4
  fi
  mv "$out.tmp" "$out"   # atomic: an interrupted build never leaves a half-written binary behind
fi
echo "$out"
