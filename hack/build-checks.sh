#!/usr/bin/env bash
# Builds the programs the tests judge mediagen with, from the Go tools module in hack/tools/checks/, with ONE
# `go build` into a per-user cache outside the checkout (next to the control-plane binaries):
#   kstatus        sigs.k8s.io/cli-utils kstatus, the health library of Flux, kpt and cli-utils
#   argocd-health  Argo CD's own health code (gitops-engine + util/lua of Argo CD v3.5.1)
#   promtool       Prometheus' promtool (`promtool test rules`, `promtool check rules`)
# The folder is named after a hash of the module's files and this script, so any change builds afresh; an
# existing one is reused (no Go needed then). Prints the folder that holds the three binaries.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module=$here/tools/checks
cache=${MEDIAGEN_CACHE:-$HOME/.cache/mediagen}
version=$( (cd "$module" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum; sha256sum < "$here/build-checks.sh") | sha256sum | cut -c1-12)
out=$cache/checks-$version
binaries=(kstatus argocd-health promtool)

complete() {
  local name
  for name in "${binaries[@]}"; do [ -x "$out/$name" ] || return 1; done
}

if complete; then
  echo "$out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (go >= 1.26) is needed to build kstatus, argocd-health and promtool." >&2
  exit 3
fi

# A tools module must be built in module mode; a user's GOFLAGS=-mod=vendor would break it.
export GOFLAGS=-mod=mod CGO_ENABLED=0

# Parallel test runs on one machine must not build the same binaries at once; the second waits here and then
# finds them built.
mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.build-checks.lock"
  flock 9
fi

if ! complete; then
  echo "building kstatus, argocd-health and promtool into $out (first run only; takes minutes)..." >&2
  prometheus_dir=$(cd "$module" && go mod download -json github.com/prometheus/prometheus \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  prometheus_version=$(cat "$prometheus_dir/VERSION")
  # remove_all_sd: promtool without Prometheus' service-discovery plugins (cloud SDKs, Kubernetes), which rule
  # tests never use; it halves the build. Only Prometheus reads this tag.
  ldflags="-s -w -X github.com/prometheus/common/version.Version=$prometheus_version \
 -X github.com/prometheus/common/version.Branch=HEAD -X github.com/prometheus/common/version.BuildUser=mediagen"
  tmp=$(mktemp -d "$cache/.checks-build.XXXXXX") && chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$module" && go build -trimpath -tags remove_all_sd -ldflags "$ldflags" -o "$tmp/" \
      ./kstatus ./argocd-health github.com/prometheus/prometheus/cmd/promtool) >&2; then
    echo "error: building the checks failed; see the go output above." >&2
    exit 4
  fi
  rm -rf "$out"
  mv "$tmp" "$out"   # atomic: an interrupted build never leaves a half-filled folder behind
  trap - EXIT
fi
echo "$out"
