#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine, with no Docker and no registry: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd + runc, the kubelet, kube-proxy and CoreDNS, every one of
# them bound to loopback or to addresses inside network namespaces this script creates.
#
#   cluster.sh up DIR PAUSE_TAR COREDNS_TAR IMAGE_TAR...
#                                    start everything, import the image tars, write DIR/kubeconfig (admin)
#   cluster.sh down DIR              stop everything and remove what `up` added to the machine (idempotent)
#   cluster.sh images DIR            the images containerd holds (while up)
#   cluster.sh import DIR IMAGE_TAR...  (re)import images into a running node (to iterate on an image)
#
# DIR is a fresh scratch directory (short: it holds unix sockets). Needs root, the node binaries
# (NODE_ASSETS, from hack/build-node.sh) and the Debian packages hack/node/packages.sh installs.
#
# Networking stays on the box: pods sit on a bridge with a private /24 and have routes only to the pod and
# Service ranges (no default route), a FORWARD guard drops anything else the bridge could send, and the API
# server is reached from pods through a relay in a network namespace of our own (10.89.0.2, on a veth pair)
# that forwards over a unix socket to 127.0.0.1. The node's address is the host end of that veth pair.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/node/lib.sh
source "$here/lib.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 up DIR IMAGE_TAR... | down DIR"
shift 2
dir=$(realpath -m "$dir")

assets=${NODE_ASSETS:-}
node_name=$(hostname)
log_dir=$dir/logs
pki=$dir/pki

pidfile() { echo "$dir/pids/$1"; }

# start <name> <command...>: run in the background (own session), output to logs/<name>.log.
start() {
  local name=$1
  shift
  mkdir -p "$dir/pids" "$log_dir"
  MEDIAGEN_NODE_RUN=$dir setsid "$@" >"$log_dir/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# stop <name>: SIGTERM, up to 20 s, then SIGKILL; only the process this script started.
stop() {
  local name=$1 file pid
  file=$(pidfile "$name")
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  local t0=$SECONDS
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  [ $((SECONDS - t0)) -lt 3 ] || echo "stopping $name took $((SECONDS - t0)) s" >&2
}

running() { local file; file=$(pidfile "$1"); [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null; }

# wait_for <what> <seconds> <command...>: poll every 0.2 s; on timeout show the last log lines of every part.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      for f in "$log_dir"/*.log; do echo "--- $f (tail)" >&2; tail -n 15 "$f" >&2 || true; done
      die "timed out after ${seconds}s waiting for $what"
    fi
    sleep 0.2
  done
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

kubectl_admin() { "$assets/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }

# --- certificates -----------------------------------------------------------------------------------------
issue() {  # issue <name> <subject> <client|server> [subjectAltName]
  local name=$1 subject=$2 usage=$3 san=${4:-}
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment"
  if [ "$usage" = server ]; then
    ext="$ext
extendedKeyUsage=serverAuth
subjectAltName=$san"
  else
    ext="$ext
extendedKeyUsage=clientAuth"
  fi
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subject" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf '%s\n' "$ext") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

make_pki() {
  mkdir -p "$pki" && chmod 700 "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=mediagen-node-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  local svc_ip
  svc_ip=$(first_service_ip)
  issue apiserver /CN=kube-apiserver server \
    "IP:127.0.0.1,IP:$svc_ip,IP:$RELAY_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
  issue admin /O=system:masters/CN=mediagen-node-admin client
  issue apiserver-kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client client
  issue kubelet "/O=system:nodes/CN=system:node:$node_name" client
  issue controller-manager /CN=system:kube-controller-manager client
  issue scheduler /CN=system:kube-scheduler client
  issue proxy /CN=system:kube-proxy client
}

kubeconfig() {  # kubeconfig <cert name> <file>
  local name=$1 file=$2
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local-node
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority: $pki/ca.crt
users:
  - name: $name
    user:
      client-certificate: $pki/$name.crt
      client-key: $pki/$name.key
contexts:
  - name: local-node
    context: {cluster: local-node, user: $name}
current-context: local-node
EOF
}

first_service_ip() { python3 -c "import ipaddress,sys;print(ipaddress.ip_network(sys.argv[1])[1])" "$SERVICE_CIDR"; }

# --- networking ---------------------------------------------------------------------------------------------
net_up() {
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # The relay's namespace is bound to a file of ours, not under /run/netns (`ip netns add` would bind-mount
  # /run/netns over itself and hide the pod namespaces containerd creates there).
  touch "$dir/relay.netns"
  unshare --net="$dir/relay.netns" true
  nsenter --net="$dir/relay.netns" ip link add "$RELAY_HOST_LINK" type veth peer name eth0
  nsenter --net="$dir/relay.netns" ip link set "$RELAY_HOST_LINK" netns 1
  ip addr add "$RELAY_HOST_IP/30" dev "$RELAY_HOST_LINK"
  ip link set "$RELAY_HOST_LINK" up
  nsenter --net="$dir/relay.netns" sh -c "ip link set lo up && ip addr add $RELAY_IP/30 dev eth0 && ip link set eth0 up \
    && ip route add $POD_CIDR via $RELAY_HOST_IP"
  # A Service address that kube-proxy does not translate goes nowhere instead of out of the default route.
  ip route add blackhole "$SERVICE_CIDR"
  # Forwarding only between pods and from pods to the relay; everything else the bridge or relay sends or
  # would receive through this host is dropped.
  iptables -N "$GUARD_CHAIN"
  iptables -A "$GUARD_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  iptables -A "$GUARD_CHAIN" -i "$BRIDGE" -o "$RELAY_HOST_LINK" -d "$RELAY_IP" -j RETURN
  iptables -A "$GUARD_CHAIN" -i "$RELAY_HOST_LINK" -o "$BRIDGE" -s "$RELAY_IP" -j RETURN
  for link in "$BRIDGE" "$RELAY_HOST_LINK"; do
    iptables -A "$GUARD_CHAIN" -i "$link" -j DROP
    iptables -A "$GUARD_CHAIN" -o "$link" -j DROP
  done
  iptables -I FORWARD 1 -j "$GUARD_CHAIN"
}

relay_up() {
  start relay-host socat "UNIX-LISTEN:$dir/api.sock,fork,unlink-early" "TCP:127.0.0.1:$api_port"
  start relay-netns nsenter --net="$dir/relay.netns" \
    socat "TCP-LISTEN:$api_port,bind=$RELAY_IP,fork,reuseaddr" "UNIX-CONNECT:$dir/api.sock"
}

cni_config() {
  mkdir -p "$dir/cni/net.d" "$dir/cni/ipam" "$dir/cni/cache"
  cat >"$dir/cni/net.d/10-mediagen.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "mediagen-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    }
  ]
}
EOF
}

# --- the parts ----------------------------------------------------------------------------------------------
etcd_up() {
  local client peer
  client=$(free_port) peer=$(free_port)
  start etcd "$assets/etcd" --data-dir "$dir/etcd" --unsafe-no-fsync=true \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "default=http://127.0.0.1:$peer" --listen-metrics-urls ""
  etcd_url=http://127.0.0.1:$client
  wait_for etcd 60 curl -fsS "$etcd_url/health"
}

apiserver_up() {
  start kube-apiserver "$assets/kube-apiserver" \
    --etcd-servers "$etcd_url" \
    --bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address "$RELAY_IP" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types Hostname \
    --profiling=false --cert-dir "$dir/apiserver"
  wait_for "kube-apiserver /readyz" 120 kubectl_admin get --raw /readyz
}

controllers_up() {
  local kcm_port sched_port
  kcm_port=$(free_port) sched_port=$(free_port)
  # Started only after /readyz: earlier it exits on the extension-apiserver-authentication ConfigMap.
  start kube-controller-manager "$assets/kube-controller-manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --cert-dir "$dir/controller-manager" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false
  start kube-scheduler "$assets/kube-scheduler" \
    --kubeconfig "$dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --cert-dir "$dir/scheduler" \
    --leader-elect=false --profiling=false
}

containerd_up() {
  mkdir -p "$dir/containerd"
  cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$dir/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  # The VM lacks CAP_SYS_RESOURCE: runc cannot lower the sandbox's oom_score_adj below our own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
  start containerd containerd --config "$dir/containerd/config.toml"
  wait_for containerd 60 ctr_k8s version
}

ctr_k8s() { ctr --address "$dir/containerd.sock" --namespace k8s.io "$@"; }

import_images() {
  local tar
  for tar in "$@"; do
    ctr_k8s images import --no-unpack=false "$tar" >/dev/null || die "importing $tar failed"
  done
}

kubelet_up() {
  local port healthz
  port=$(free_port) healthz=$(free_port)
  mkdir -p "$dir/kubelet" "$dir/pod-logs"
  : >"$dir/resolv.conf"  # pods with dnsPolicy Default get no upstream resolver
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $dir/resolv.conf
podLogsDir: $dir/pod-logs
containerRuntimeEndpoint: unix://$dir/containerd.sock
imageServiceEndpoint: unix://$dir/containerd.sock
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
rotateCertificates: false
serverTLSBootstrap: false
EOF
  start kubelet "$assets/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
    --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" \
    --hostname-override "$node_name" --node-ip "$RELAY_HOST_IP"
}

proxy_up() {
  local healthz metrics
  healthz=$(free_port) metrics=$(free_port)
  cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $node_name
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$healthz
metricsBindAddress: 127.0.0.1:$metrics
nodePortAddresses: ["$RELAY_HOST_IP/32"]
iptables: {localhostNodePorts: false}
# 0: leave the host's conntrack sysctls as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy "$assets/kube-proxy" --config "$dir/kube-proxy.yaml"
}

coredns_up() {
  sed -e "s|@DNS_IP@|$DNS_IP|g" -e "s|@IMAGE@|$COREDNS_IMAGE|g" -e "s|@DOMAIN@|$CLUSTER_DOMAIN|g" \
    "$here/coredns.yaml" | kubectl_admin apply -f - >/dev/null
  wait_for "CoreDNS ready" 180 kubectl_admin -n kube-system wait --for=condition=Available deployment/coredns \
    --timeout=5s
}

node_ready() {
  [ "$(kubectl_admin get node "$node_name" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

up() {
  [ -n "$assets" ] && [ -x "$assets/kubelet" ] || die "NODE_ASSETS must point at the node binaries (hack/build-node.sh)"
  [ "$(id -u)" = 0 ] || die "the local node needs root (network namespaces, iptables, containerd)"
  getent ahostsv4 "$node_name" | awk '{print $1}' | grep -q '^127\.' \
    || die "the host name $node_name must resolve to a loopback address (/etc/hosts): the API server reaches the kubelet by it"
  ! ip link show "$BRIDGE" >/dev/null 2>&1 || die "$BRIDGE exists: another local node runs, or a previous run left it (cluster.sh down DIR)"
  mkdir -p "$dir" "$log_dir"
  save_sysctls "$dir/sysctls.saved"
  local host_dir
  for host_dir in "${NODE_HOST_DIRS[@]}"; do
    [ -e "$host_dir" ] || echo "$host_dir" >>"$dir/absent-host-dirs"
  done

  local t0=$SECONDS
  api_port=$(free_port)
  echo "$api_port" >"$dir/api-port"
  make_pki
  kubeconfig admin "$dir/kubeconfig"
  kubeconfig kubelet "$dir/kubelet.kubeconfig"
  kubeconfig controller-manager "$dir/controller-manager.kubeconfig"
  kubeconfig scheduler "$dir/scheduler.kubeconfig"
  kubeconfig proxy "$dir/proxy.kubeconfig"
  net_up
  cni_config
  containerd_up
  # The node's own images (pause, CoreDNS: the first two) before the kubelet starts; the large ones meanwhile.
  import_images "$1" "$2" &
  local importing_node=$!
  shift 2
  import_images "$@" &
  local importing=$!
  etcd_up
  apiserver_up
  relay_up
  controllers_up
  wait "$importing_node" || die "importing the pause and CoreDNS images failed"
  kubelet_up
  proxy_up
  wait_for "node $node_name Ready" 180 node_ready
  echo "node_ready_s=$((SECONDS - t0))" >"$dir/timings"
  coredns_up
  echo "coredns_ready_s=$((SECONDS - t0))" >>"$dir/timings"
  wait "$importing" || die "importing the images failed"
  ctr_k8s images ls -q | sort >"$dir/imported-images"
  echo "images_imported_s=$((SECONDS - t0))" >>"$dir/timings"
  echo "local node up in $((SECONDS - t0)) s: KUBECONFIG=$dir/kubeconfig" >&2
}

# --- teardown -----------------------------------------------------------------------------------------------
down() {
  [ -d "$dir" ] || return 0
  api_port=$(cat "$dir/api-port" 2>/dev/null || echo 0)
  # The pods' host-side veths: deleted explicitly below, since a pod's namespace can outlive its processes by
  # minutes (sockets the kill left closing), and its veth pair with it.
  ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' >"$dir/pod-veths" || true
  stop kube-proxy
  stop kubelet
  # Pods go before containerd: their tasks are killed, containers and sandboxes removed.
  if running containerd; then
    local task
    for task in $(ctr_k8s tasks ls -q 2>/dev/null); do
      ctr_k8s tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    for task in $(ctr_k8s tasks ls -q 2>/dev/null); do
      for _ in $(seq 50); do
        ctr_k8s tasks delete "$task" >/dev/null 2>&1 && break
        sleep 0.1
      done
    done
    for container in $(ctr_k8s containers ls -q 2>/dev/null); do
      ctr_k8s containers delete "$container" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  # Shims outlive containerd by design; end the ones that serve this containerd.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $dir/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  stop kube-scheduler
  stop kube-controller-manager
  stop relay-netns
  stop relay-host
  stop kube-apiserver
  stop etcd

  # Pod network namespaces containerd bind-mounted under /run/netns.
  local ns
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  if grep -qx /run/netns "$dir/absent-host-dirs" 2>/dev/null && [ -d /run/netns ]; then
    umount /run/netns 2>/dev/null || true
  fi
  if [ -e "$dir/relay.netns" ]; then
    umount "$dir/relay.netns" 2>/dev/null || true
  fi
  local veth
  while read -r veth; do
    [ -n "$veth" ] && ip link del "$veth" 2>/dev/null || true
  done <"$dir/pod-veths"
  ip link del "$RELAY_HOST_LINK" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  ip route del blackhole "$SERVICE_CIDR" 2>/dev/null || true

  remove_rules
  remove_kube_cgroups
  # Whatever is still mounted below the scratch directory (kubelet volumes, container root filesystems).
  local mnt
  while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  local host_dir
  while read -r host_dir; do
    rm -rf --one-file-system "$host_dir"
  done < <(cat "$dir/absent-host-dirs" 2>/dev/null)
  [ -f "$dir/sysctls.saved" ] && restore_sysctls "$dir/sysctls.saved"
}

remove_rules() {
  # kube-proxy removes its own chains; the kubelet's and ours are removed by name.
  if [ -n "$assets" ] && [ -x "$assets/kube-proxy" ]; then
    "$assets/kube-proxy" --cleanup >"$log_dir/kube-proxy-cleanup.log" 2>&1 || true
  fi
  local save table chain
  for save in iptables ip6tables; do
    while read -r table rule; do
      # iptables-save quotes comments with spaces: let the shell parse the rule as iptables wrote it.
      eval "$save -t $table -D $rule" 2>/dev/null || true
    done < <("$save-save" 2>/dev/null | awk '
      /^\*/ {table = substr($0, 2)}
      /^-A / && ($0 ~ /KUBE-|MEDIAGEN-/) {sub(/^-A /, ""); print table " " $0}' | sort -r)
    for table in filter nat mangle raw; do
      for chain in $("$save" -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|MEDIAGEN-)/ {print $2}'); do
        "$save" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  # The nft tables the iptables-nft backend (and kube-proxy) created, when they are empty now and were absent.
  local family name
  while read -r family name; do
    if ! grep -qx "table $family $name" "$dir/nft-tables-before" 2>/dev/null; then
      if ! nft list table "$family" "$name" 2>/dev/null | grep -qEv '^\s*(table|chain|type|policy|\}|$)'; then
        nft delete table "$family" "$name" 2>/dev/null || true
      fi
    fi
  done < <(nft list tables 2>/dev/null | awk '{print $2, $3}')
}

remove_kube_cgroups() {
  local root
  for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice /sys/fs/cgroup/kubepods; do
    [ -d "$root" ] || continue
    find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

case $cmd in
  up)
    nft list tables 2>/dev/null >"${dir}.nft-tables" || true
    mkdir -p "$dir"
    mv "${dir}.nft-tables" "$dir/nft-tables-before"
    up "$@"
    ;;
  down) down ;;
  images) ctr_k8s images ls -q | sort ;;
  import) import_images "$@" ;;
  *) die "unknown command $cmd (up or down)" ;;
esac
