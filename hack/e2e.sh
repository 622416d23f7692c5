#!/usr/bin/env bash
# `make e2e`: the image, the Helm chart and the operator as pods on a real kubelet node on this machine, without
# Docker or a registry, then everything torn down and the machine checked to be as it was.
#
#   hack/e2e.sh [--scale smoke|full] [-- PYTEST ARGS...]
#
# 1. Debian packages (containerd, runc, CNI plugins, iptables, nftables, socat, debootstrap, buildah), if missing.
# 2. Beside each other: the node binaries (hack/build-node.sh, Go, cached in ~/.cache/mediagen) and the images
#    (hack/node/images.sh: buildah builds the project's Dockerfile on a debootstrap'd base; cached likewise).
# 3. A snapshot of the machine (hack/node/snapshot.sh), a one-node cluster (hack/node/cluster.sh up), the
#    scenarios (pytest tests/e2e, the same tests hack/kind-e2e.sh runs against kind), the proof that containerd
#    pulled nothing, teardown, and a second snapshot that must equal the first.
#
# --scale smoke (default; what .ci/run runs) keeps the heavy scenarios small; --scale full runs 2,000 generations
# in flight and writes the figures into bench/results.json under "e2e". Needs root. About 5 minutes warm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=hack/node/lib.sh
source "$here/node/lib.sh"

scale=smoke
pytest_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --scale) scale=${2:?--scale needs smoke or full}; shift 2 ;;
    --scale=*) scale=${1#--scale=}; shift ;;
    --) shift; pytest_args=("$@"); break ;;
    *) die "usage: $0 [--scale smoke|full] [-- PYTEST ARGS...]" ;;
  esac
done
case $scale in smoke | full) ;; *) die "--scale must be smoke or full, not $scale" ;; esac
[ "$(id -u)" = 0 ] || die "make e2e needs root (containerd, network namespaces, iptables)"

export PATH="$HOME/.local/bin:$PATH"  # uv, as .ci/run installs it
cache=${MEDIAGEN_CACHE:-$HOME/.cache/mediagen}
mkdir -p "$cache"
exec 7>"$cache/.e2e.lock"
flock -n 7 || die "another make e2e runs on this machine (one local node at a time)"

t0=$SECONDS
stamp() { printf '%s %4ss  %s\n' "$(date +%T)" "$((SECONDS - t0))" "$*" >&2; }

log "Debian packages"
bash "$here/node/packages.sh"

work=$(mktemp -d /tmp/mgnode.XXXXXX)
snapshots=$work/snapshots
mkdir -p "$snapshots"
bash "$here/node/snapshot.sh" >"$snapshots/before"

log "node binaries and images (in parallel; cached in $cache)"
bash "$here/build-node.sh" >"$work/node-assets" 2>"$work/build-node.log" &
node_build=$!
bash "$here/node/images.sh" python >"$work/images-python" 2>"$work/images-python.log" &
image_build=$!
wait "$node_build" || { cat "$work/build-node.log" >&2; die "building the node binaries failed"; }
stamp "node binaries ready"
NODE_ASSETS=$(tail -n1 "$work/node-assets")
export NODE_ASSETS
bash "$here/node/images.sh" node >"$work/images-node" 2>"$work/images-node.log" \
  || { cat "$work/images-node.log" >&2; die "building the pause and CoreDNS images failed"; }
wait "$image_build" || { cat "$work/images-python.log" >&2; die "building the mediagen images failed"; }
stamp "images ready"
image_value() { sed -n "s/^$1=//p" "$work/images-python" "$work/images-node"; }

cluster=$work/c
status=0
# shellcheck disable=SC2329 # the EXIT trap calls it
finish() {
  local rc=$?
  [ "$rc" = 0 ] || status=$rc
  log "teardown"
  bash "$here/node/cluster.sh" down "$cluster" || status=1
  bash "$here/node/snapshot.sh" >"$snapshots/after"
  if ! diff -u "$snapshots/before" "$snapshots/after" >"$snapshots/diff"; then
    echo "error: the machine is not as it was before the run; what changed (- before, + after):" >&2
    cat "$snapshots/diff" >&2
    status=1
  else
    stamp "machine as found: processes, rules, links, routes, namespaces, mounts, cgroups, sysctls, files"
  fi
  if [ -f "$work/figures.json" ]; then
    echo "figures: $(tr -d ' \n' <"$work/figures.json") $(tr '\n' ' ' <"$cluster/timings" 2>/dev/null)" >&2
  fi
  if [ "$status" = 0 ]; then
    rm -rf "$work"
    stamp "make e2e passed (scale $scale)"
  else
    echo "make e2e FAILED; logs kept in $work (cluster logs: $cluster/logs)" >&2
  fi
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

log "one-node cluster"
bash "$here/node/cluster.sh" up "$cluster" \
  "$(image_value pause)" "$(image_value coredns)" "$(image_value mediagen)" "$(image_value demo)" \
  "$(image_value tooling)"
stamp "cluster up ($(tr '\n' ' ' <"$cluster/timings"))"

log "scenarios (pytest tests/e2e, scale $scale)"
helm=$("$here/build-helm.sh")
(
  cd "$root"
  MEDIAGEN_E2E_KUBECONFIG=$cluster/kubeconfig MEDIAGEN_E2E_KUBECTL=$NODE_ASSETS/kubectl MEDIAGEN_E2E_HELM=$helm \
    MEDIAGEN_E2E_IMAGE=localhost/mediagen:e2e MEDIAGEN_E2E_TOOLING_IMAGE=localhost/mediagen-tooling:e2e \
    MEDIAGEN_E2E_SCALE=$scale MEDIAGEN_E2E_PLATFORM=local-node MEDIAGEN_E2E_FIGURES=$work/figures.json \
    MEDIAGEN_E2E_NODE_TIMINGS=$cluster/timings MEDIAGEN_E2E_IMAGE_SIZE_BYTES=$(image_value mediagen_size_bytes) \
    "${UV:-$here/uv.sh}" run pytest tests/e2e -m e2e -p no:cacheprovider -v "${pytest_args[@]}"
) || status=$?
stamp "scenarios finished (pytest exit $status)"

log "containerd pulled nothing"
if grep -E 'PullImage|pulling image|fetch failed|resolving' "$cluster/logs/containerd.log" >"$work/pulls"; then
  echo "error: containerd attempted to pull images:" >&2
  cat "$work/pulls" >&2
  status=1
else
  bash "$here/node/cluster.sh" images "$cluster" >"$work/images-after"
  if ! diff -u "$cluster/imported-images" "$work/images-after" >&2; then
    echo "error: containerd has images that were not imported (above)" >&2
    status=1
  else
    stamp "no pull attempted: containerd's log has no PullImage, and its images are exactly the $(wc -l <"$work/images-after") imported"
  fi
fi

if [ "$status" = 0 ] && [ "$scale" = full ]; then
  "${UV:-$here/uv.sh}" run --directory "$root" python -m mediagen_dev.e2e.results "$work/figures.json" "$cluster/timings" \
    bench/results.json
fi
exit "$status"
