#!/usr/bin/env bash
# Shared by the local-node scripts (sourced): the network plan, images, and saving/restoring sysctls.
set -euo pipefail

# Private ranges that only exist inside this run's bridge and namespaces. The Service range is virtual (kube-proxy
# translates it; a blackhole route catches the rest).
POD_CIDR=${NODE_POD_CIDR:-10.244.0.0/24}
SERVICE_CIDR=${NODE_SERVICE_CIDR:-10.96.0.0/24}
DNS_IP=${NODE_DNS_IP:-10.96.0.10}
RELAY_HOST_IP=10.89.0.1
RELAY_IP=10.89.0.2
RELAY_HOST_LINK=mgrelay0
BRIDGE=mgnode0
GUARD_CHAIN=MEDIAGEN-NODE-GUARD
CLUSTER_DOMAIN=cluster.local
PAUSE_IMAGE=localhost/pause:3.10
COREDNS_IMAGE=localhost/coredns:v1.14.7
export POD_CIDR SERVICE_CIDR DNS_IP RELAY_HOST_IP RELAY_IP RELAY_HOST_LINK BRIDGE GUARD_CHAIN CLUSTER_DOMAIN \
  PAUSE_IMAGE COREDNS_IMAGE

# Host directories the node's programs create whatever they are told (the kubelet's device-plugin socket, libcni's
# result cache, containerd's shim sockets, pod namespaces, log links): removed after a run unless they existed.
# shellcheck disable=SC2034 # used by the scripts that source this file
NODE_HOST_DIRS=(/var/lib/kubelet /var/lib/cni /run/containerd /run/netns /var/log/containers /var/log/pods)

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
log() { printf '\n==> %s\n' "$*" >&2; }

# The sysctls a node run may change: forwarding (ours), the kubelet's kernel tunables, kube-proxy's conntrack
# and localnet settings, the bridge netfilter switches.
# shellcheck disable=SC2034 # used by the scripts that source this file
NODE_SYSCTLS=(
  net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding
  net.ipv4.conf.all.route_localnet net.ipv6.conf.all.forwarding
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_be_liberal
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
)

# sysctl_path <name>: its file under /proc/sys.
sysctl_path() { echo "/proc/sys/${1//.//}"; }

# save_sysctls <file>: "name value" lines for each of NODE_SYSCTLS that exists.
save_sysctls() {
  local name path
  : >"$1"
  for name in "${NODE_SYSCTLS[@]}"; do
    path=$(sysctl_path "$name")
    [ -r "$path" ] && printf '%s %s\n' "$name" "$(tr '\t' ' ' <"$path")" >>"$1"
  done
  return 0
}

# restore_sysctls <file>: write back the values save_sysctls recorded (only those that changed).
restore_sysctls() {
  local name value path
  while read -r name value; do
    path=$(sysctl_path "$name")
    [ -w "$path" ] || continue
    [ "$(tr '\t' ' ' <"$path")" = "$value" ] || echo "$value" >"$path"
  done <"$1"
}
