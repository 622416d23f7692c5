#!/usr/bin/env bash
# End to end on kind: create a kind cluster, build the images (the product, its demo-store variant and the tooling
# image with the test servers) and load them into the cluster, then run the end-to-end scenarios of tests/e2e,
# the same ones `make e2e` runs on a local kubelet node (README "End to end on a real node"). Needs Docker, kind,
# kubectl and uv; helm is built by hack/build-helm.sh if missing.
#
# Environment:
#   KIND_CLUSTER_NAME   cluster name (default mediagen-e2e); an existing cluster of that name is reused
#   KIND_NODE_IMAGE     node image, e.g. kindest/node:v1.34.0 (default: kind's own default)
#   IMAGE               image to build and load (default mediagen:e2e; the demo store's is IMAGE-demo)
#   TOOLING_IMAGE       the test servers' image (default mediagen-tooling:e2e)
#   SCALE               smoke (default) or full: the counts of the heavy scenarios
#   KEEP_CLUSTER        1: leave the cluster running afterwards (default: delete it if this script created it)
#   TIMEOUT             how long to wait for each step (default 300s)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cluster=${KIND_CLUSTER_NAME:-mediagen-e2e}
image=${IMAGE:-mediagen:e2e}
tooling_image=${TOOLING_IMAGE:-mediagen-tooling:e2e}
keep=${KEEP_CLUSTER:-0}
timeout=${TIMEOUT:-300s}
created_cluster=0

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
done
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed)"
helm=${HELM:-}
if [ -z "$helm" ]; then
  if command -v helm >/dev/null 2>&1; then
    helm=$(command -v helm)
  else
    helm=$("$here/build-helm.sh")
  fi
fi

context=kind-$cluster
kc() { kubectl --context "$context" "$@"; }

diagnostics() {
  log "diagnostics"
  kc get pods -A -o wide || true
  kc get mediagenerations -A -o wide || true
  kc get events -A --sort-by=.lastTimestamp | tail -50 || true
}

finish() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    diagnostics
  fi
  if [ "$created_cluster" = 1 ] && [ "$keep" != 1 ]; then
    log "deleting kind cluster $cluster"
    kind delete cluster --name "$cluster" || true
  fi
  exit "$status"
}
trap finish EXIT

log "building images $image, $image-demo (the demo store: the product plus moto) and $tooling_image (test servers)"
docker build --tag "$image" "$root"
docker build --target demo --tag "$image-demo" "$root"
docker build --build-arg "DEMO_IMAGE=$image-demo" --tag "$tooling_image" --file "$here/node/tooling.Dockerfile" \
  "$root/operator"

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "reusing kind cluster $cluster"
else
  log "creating kind cluster $cluster"
  node_args=()
  if [ -n "${KIND_NODE_IMAGE:-}" ]; then
    node_args=(--image "$KIND_NODE_IMAGE")
  fi
  kind create cluster --name "$cluster" --wait "$timeout" "${node_args[@]}"
  created_cluster=1
fi

log "loading the images into the cluster"
kind load docker-image "$image" "$image-demo" "$tooling_image" --name "$cluster"

log "the end-to-end scenarios (pytest tests/e2e: the same ones make e2e runs on a local kubelet node)"
kubeconfig=$(mktemp)
kind get kubeconfig --name "$cluster" >"$kubeconfig"
(
  cd "$root"
  MEDIAGEN_E2E_KUBECONFIG=$kubeconfig MEDIAGEN_E2E_KUBECTL=$(command -v kubectl) MEDIAGEN_E2E_HELM=$helm \
    MEDIAGEN_E2E_IMAGE=$image MEDIAGEN_E2E_TOOLING_IMAGE=$tooling_image MEDIAGEN_E2E_PLATFORM=kind \
    MEDIAGEN_E2E_SCALE=${SCALE:-smoke} "${UV:-$here/uv.sh}" run pytest tests/e2e -m e2e -p no:cacheprovider -v
)
rm -f "$kubeconfig"
log "kind e2e passed"
