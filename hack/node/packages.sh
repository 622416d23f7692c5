#!/usr/bin/env bash
# Installs the Debian packages the local node needs, when a command of theirs is missing (root; apt).
set -euo pipefail

# command:package
wanted=(containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins iptables:iptables
  conntrack:conntrack nft:nftables socat:socat debootstrap:debootstrap buildah:buildah gcc:gcc openssl:openssl
  flock:util-linux nsenter:util-linux curl:curl)
missing=()
for item in "${wanted[@]}"; do
  command=${item%%:*} package=${item#*:}
  if [[ $command == /* ]]; then [ -e "$command" ] && continue; else command -v "$command" >/dev/null 2>&1 && continue; fi
  [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
done
# gcc -static needs the C library's static archive.
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(find /usr/lib -name libc.a -print -quit 2>/dev/null)" ] || missing+=(libc6-dev)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "error: missing Debian packages (${missing[*]}) and not root to install them" >&2; exit 1; }
echo "installing ${missing[*]} (apt)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
