#!/usr/bin/env bash
# Prints what a local-node run may change on this machine, one normalised line per fact, so that a snapshot taken
# before the run and one taken after it can be compared with diff: the processes of the node's programs, nft and
# iptables rules, links, addresses and routes, network namespaces, mounts, the kubepods cgroups, the sysctls the
# kubelet, kube-proxy and the run touch, and the host directories a node's programs would write to.
#
#   snapshot.sh > before; ...; snapshot.sh > after; diff before after
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/node/lib.sh
source "$here/lib.sh"

section() { printf '## %s\n' "$1"; }

section processes
# Programs of a node (the control plane's etcd and kube-apiserver are left out: integration tests run them).
for name in containerd containerd-shim-runc-v2 containerd-shim runc kubelet kube-proxy kube-controller-manager \
  kube-scheduler coredns socat pause buildah; do
  count=$(pgrep -xc "$name" 2>/dev/null || true)
  [ "${count:-0}" -gt 0 ] && echo "process $name x$count"
done
# Anything started by a node run carries its marker in the environment.
for environ in $(grep -lsa 'MEDIAGEN_NODE_RUN=' /proc/[0-9]*/environ 2>/dev/null || true); do
  pid=${environ#/proc/} pid=${pid%/environ}
  echo "process with the node-run marker: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
done

section nft
nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/; s/ # handle [0-9]+//' || true
section iptables-legacy
for save in iptables-legacy-save ip6tables-legacy-save; do
  command -v "$save" >/dev/null && "$save" 2>/dev/null | grep -Ev '^(#|:)' || true
done

section links
ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
section addresses
ip -o addr show | awk '{print $2, $3, $4}' | sort
section routes
ip route show table all 2>/dev/null | grep -Ev '^(broadcast|local) ' | sort
ip -6 route show table all 2>/dev/null | grep -Ev '^(broadcast|local|multicast|anycast) ' | sort

section netns
find /run/netns -mindepth 1 -maxdepth 1 -printf 'netns %f\n' 2>/dev/null | sort || true
[ -d /run/netns ] && echo "dir /run/netns"

section mounts
awk '{print $5, $9}' /proc/self/mountinfo | sort

section cgroups
find /sys/fs/cgroup -maxdepth 3 -type d \( -name 'kubepods*' -o -name 'kubelet*' \) 2>/dev/null | sort

section sysctls
for name in "${NODE_SYSCTLS[@]}"; do
  path=$(sysctl_path "$name")
  [ -r "$path" ] && printf '%s = %s\n' "$name" "$(tr '\t' ' ' <"$path")"
done

section files
for d in /var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /etc/cni /opt/cni /run/containerd \
  /var/lib/containerd /opt/containerd /run/runc /etc/kubernetes /var/lib/containers /run/containers \
  /run/flannel /var/run/netns; do
  if [ -e "$d" ]; then
    echo "exists $d"
    find "$d" -maxdepth 2 2>/dev/null | sort | sed 's/^/  /'
  fi
done
