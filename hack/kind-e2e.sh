#!/usr/bin/env bash
# End to end on a real cluster: create a kind cluster, build the image and load it into the cluster, install
# the Helm chart in mock mode (placeholder images, in-memory demo store), apply examples/mock-image.yaml and
# wait until it has Succeeded. Needs Docker, kind and kubectl; helm is built by hack/build-helm.sh if missing.
#
# Environment:
#   KIND_CLUSTER_NAME   cluster name (default mediagen-e2e); an existing cluster of that name is reused
#   KIND_NODE_IMAGE     node image, e.g. kindest/node:v1.34.0 (default: kind's own default)
#   IMAGE               image to build and load (default mediagen:e2e)
#   KEEP_CLUSTER        1: leave the cluster running afterwards (default: delete it if this script created it)
#   TIMEOUT             how long to wait for each step (default 300s)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cluster=${KIND_CLUSTER_NAME:-mediagen-e2e}
image=${IMAGE:-mediagen:e2e}
keep=${KEEP_CLUSTER:-0}
timeout=${TIMEOUT:-300s}
release=mediagen
namespace=mediagen-system
example=$root/examples/mock-image.yaml
example_namespace=default
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
  kc -n "$namespace" describe pods || true
  kc -n "$namespace" logs deployment/$release-operator --tail=200 || true
  kc -n "$namespace" logs deployment/$release-store --tail=50 || true
  kc -n "$example_namespace" describe mediagenerations || true
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

log "building images $image and $image-demo (the demo store: the product plus moto)"
docker build --tag "$image" "$root"
docker build --target demo --tag "$image-demo" "$root"

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

log "loading $image and $image-demo into the cluster"
kind load docker-image "$image" "$image-demo" --name "$cluster"

log "installing the chart (mock mode)"
"$helm" upgrade --install "$release" "$root/charts/mediagen" \
  --kube-context "$context" \
  --namespace "$namespace" --create-namespace \
  --values "$root/charts/mediagen/ci/mock-values.yaml" \
  --set image.repository="${image%:*}" \
  --set image.tag="${image##*:}" \
  --set image.pullPolicy=Never \
  --wait --timeout "$timeout"
kc -n "$namespace" get pods -o wide

log "applying $(basename "$example")"
name=$(kc create --dry-run=client -o jsonpath='{.metadata.name}' -f "$example")
kc -n "$example_namespace" delete mediagenerations "$name" --ignore-not-found --wait=true
kc -n "$example_namespace" apply -f "$example"

log "waiting for mediageneration/$name to succeed"
kc -n "$example_namespace" wait --for=condition=Succeeded "mediagenerations/$name" --timeout="$timeout"
kc -n "$example_namespace" get mediagenerations -o wide
phase=$(kc -n "$example_namespace" get mediagenerations "$name" -o jsonpath='{.status.phase}')
url=$(kc -n "$example_namespace" get mediagenerations "$name" -o jsonpath='{.status.url}')
[ "$phase" = Succeeded ] || die "phase is $phase, not Succeeded"
[ -n "$url" ] || die "no status.url"

log "the output is downloadable from inside the cluster"
# The URL is presigned against the demo store's in-namespace service name, so fetch it from a pod there
# (restricted security context, the image's own Python): exit 0 only for a PNG.
fetch='import sys,httpx;r=httpx.get(sys.argv[1]);r.raise_for_status();sys.exit(r.content[:4]!=bytes([137,80,78,71]))'
overrides=$(cat <<JSON
{"spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "fetch", "image": "$image", "imagePullPolicy": "Never",
    "command": ["python", "-c", "$fetch", "$url"],
    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}}}]}}
JSON
)
kc -n "$namespace" run "e2e-fetch-$RANDOM" --rm --attach --restart=Never --quiet \
  --image="$image" --overrides="$overrides" --pod-running-timeout="$timeout"

log "kind e2e passed: $name Succeeded, output at $url"
