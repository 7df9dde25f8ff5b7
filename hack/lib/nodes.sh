# shellcheck shell=bash
# Kubernetes nodes: in each flb-nodeN namespace a containerd (runc, CNI bridge), a kubelet and a
# kube-proxy (iptables mode), each with its own state under .lab/nodes/NAME:
#   containerd.sock  containerd/{root,state}  runc/ (runc's state: `down` kills what is left)
#   cni/net.d/ cni/ipam/  kubelet/ (root dir)  pod-logs/  *.kubeconfig *.yaml
# Daemons start with `nsenter --net`, not `ip netns exec`: the latter remounts /sys, hiding the
# cgroup v1 hierarchies the kubelet and runc need. Pods get addresses from the node's pod CIDRs
# (hack/lib/network.sh) and reach the API server at flb-cp (198.18.0.5) like any pod.

lab_node_dir() { echo "$LAB_DIR/nodes/$1"; }

lab_ctr() { # NODE ARGS... : ctr against the node's containerd, namespace k8s.io
  local node=$1
  shift
  "$LAB_BIN/ctr" --address "$(lab_node_dir "$node")/containerd.sock" --namespace k8s.io "$@"
}

lab_node_procs() { # the pid-file names of every node daemon, one per line
  local n
  for n in "${LAB_NODES[@]}"; do printf '%s\n' "containerd-$n" "kubelet-$n" "kube-proxy-$n"; done
}

lab_node_write_config() { # NODE
  local n=$1 d
  d=$(lab_node_dir "$n")
  mkdir -p "$d/containerd" "$d/runc" "$d/cni/net.d" "$d/cni/ipam" "$d/kubelet" "$d/pod-logs"
  cat >"$d/containerd.toml" <<EOF
version = 3
root = "$d/containerd/root"
state = "$d/containerd/state"
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins]
  # NRI would listen on a host-wide socket (/var/run/nri); the lab needs none of it.
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.internal.v1.opt']
    path = "$d/opt"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$LAB_PAUSE_IMAGE'
  [plugins.'io.containerd.cri.v1.runtime']
    # These machines lack CAP_SYS_RESOURCE for negative OOM score adjustments.
    restrict_oom_score_adj = true
    # Pod network namespaces under this node's state, not the host-wide /var/run/netns.
    netns_mounts_under_state_dir = true
    enable_cdi = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          # Debian's runc; cgroup v1 through cgroupfs (there is no systemd in the lab).
          BinaryName = '/usr/sbin/runc'
          SystemdCgroup = false
          Root = '$d/runc'
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '$d/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
EOF
  # A bridge per node, the node as the pods' gateway, no masquerade (pods see clients' addresses;
  # every lab host routes the pod CIDRs), hairpin for a pod reaching itself through a Service.
  cat >"$d/cni/net.d/10-flb-pods.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "flb-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$d/cni/ipam",
        "ranges": [[{"subnet": "$(lab_pod_cidr4 "$n")"}], [{"subnet": "$(lab_pod_cidr6 "$n")"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
      }
    }
  ]
}
EOF
  # No cluster DNS in the lab; pods get this file (and resolve nothing).
  echo "nameserver $(lab_host_ip4 "$LAB_CP")" >"$d/resolv.conf"
  local server
  server="https://$(lab_host_ip4 "$LAB_CP"):$LAB_APISERVER_PORT"
  lab_write_kubeconfig "$d/kubelet.kubeconfig" "kubelet-$n" "system:node:$n" "$server"
  lab_write_kubeconfig "$d/kube-proxy.kubeconfig" kube-proxy system:kube-proxy "$server"
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts (deprecated upstream, refused by default since 1.35).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
oomScoreAdj: 0
localStorageCapacityIsolation: false
makeIPTablesUtilChains: false
# Images cannot be pulled again (no registry): never collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$LAB_PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$LAB_PKI/kubelet-serving-$n.crt"
tlsPrivateKeyFile: "$LAB_PKI/kubelet-serving-$n.key"
containerRuntimeEndpoint: "unix://$d/containerd.sock"
podLogsDir: "$d/pod-logs"
resolvConf: "$d/resolv.conf"
clusterDomain: cluster.local
serializeImagePulls: false
EOF
  cat >"$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$d/kube-proxy.kubeconfig"}
hostnameOverride: $n
mode: iptables
clusterCIDR: "$LAB_CLUSTER_CIDRS"
healthzBindAddress: "0.0.0.0:10256"
metricsBindAddress: "127.0.0.1:10249"
# Host-wide conntrack sysctls are not kube-proxy's to change on a shared machine.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
# NodePorts on 127.0.0.1 would need route_localnet.
iptables: {localhostNodePorts: false}
EOF
}

# lab_node_spawn NAME NODE CMD... : a daemon in NODE's network namespace (only).
lab_node_spawn() {
  local name=$1 n=$2
  shift 2
  lab_spawn "$name" -- nsenter "--net=/run/netns/$n" env "PATH=$LAB_BIN:$PATH" "$@"
}

lab_nodes_start() {
  local n d
  for n in "${LAB_NODES[@]}"; do
    lab_node_write_config "$n"
    d=$(lab_node_dir "$n")
    lab_node_spawn "containerd-$n" "$n" "$LAB_BIN/containerd" --config "$d/containerd.toml" --log-level warn
  done
  for n in "${LAB_NODES[@]}"; do
    d=$(lab_node_dir "$n")
    lab_wait_for 30 "containerd on $n" test -S "$d/containerd.sock" ||
      lab_die "containerd on $n did not start (see $LAB_LOGS/containerd-$n.log)"
  done
  lab_images_import_all
  for n in "${LAB_NODES[@]}"; do
    d=$(lab_node_dir "$n")
    lab_node_spawn "kubelet-$n" "$n" "$LAB_BIN/kubelet" --config "$d/kubelet.yaml" \
      --kubeconfig "$d/kubelet.kubeconfig" --root-dir "$d/kubelet" \
      --hostname-override "$n" --node-ip "$(lab_host_ip4 "$n"),$(lab_host_ip6 "$n")" --v=1
    lab_node_spawn "kube-proxy-$n" "$n" "$LAB_BIN/kube-proxy" --config "$d/kube-proxy.yaml" --v=1
  done
}

# Imports .lab/images/*.tar into every node's containerd, in parallel.
lab_images_import_all() {
  local n p
  local -a pids=()
  for n in "${LAB_NODES[@]}"; do
    lab_images_import "$n" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || lab_die "importing the images failed"; done
}

lab_nodes_wait_ready() {
  lab_kubectl wait --for condition=Ready node --all --timeout 90s >/dev/null || {
    lab_kubectl get nodes -o wide >&2 || true
    lab_die "the nodes did not become Ready (see $LAB_LOGS/kubelet-*.log)"
  }
}

# Stops the kubelets and kube-proxies, then every container (runc state of each node: a pod's
# processes are not children of anything the lab started), then containerd and its shims, then
# unmounts what they mounted under .lab (volumes, rootfs, pod network namespaces).
lab_nodes_stop() {
  local n d id root
  local -a names=() ids
  mapfile -t ids < <(lab_container_ids)
  for n in "${LAB_NODES[@]}"; do names+=("kubelet-$n" "kube-proxy-$n"); done
  lab_stop_named "${names[@]}"
  # The shim keeps runc's state per containerd namespace: runc/k8s.io.
  local -a roots=()
  for n in "${LAB_NODES[@]}"; do
    d=$(lab_node_dir "$n")
    for root in "$d"/runc/*/; do [ -d "$root" ] && roots+=("${root%/}"); done
  done
  for root in "${roots[@]}"; do
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" kill --all "$id" KILL 2>/dev/null || true
    done
  done
  for root in "${roots[@]}"; do
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" delete --force "$id" 2>/dev/null || lab_warn "runc could not delete container $id ($root)"
    done
  done
  names=()
  for n in "${LAB_NODES[@]}"; do names+=("containerd-$n"); done
  lab_stop_named "${names[@]}"
  # Last resort: a process still in the cgroup of one of the nodes' containers (runc lost it).
  local -a strays
  mapfile -t strays < <(lab_container_pids "${ids[@]}")
  if [ "${#strays[@]}" -gt 0 ]; then
    lab_warn "killing container processes runc did not stop: ${strays[*]}"
    kill -KILL "${strays[@]}" 2>/dev/null || true
  fi
  lab_nodes_host_cleanup "${ids[@]}"
  lab_unmount_under "$LAB_DIR"
}

# What kubelets, runc and CNI leave at fixed host paths (none of them configurable): container log
# links in /var/log/containers, CNI result caches in /var/lib/cni/results, cgroups /k8s.io/ID, and
# the kubelets' empty /var/lib/kubelet/device-plugins. Only the lab's own entries are removed
# (links into .lab, the IDS of its containers; directories only when empty).
lab_nodes_host_cleanup() { # ID...
  local id f
  # (Every test may fail here: hack/lab runs with errexit, and down must go on.)
  for f in /var/log/containers/*.log; do
    if [ -L "$f" ] && [[ $(readlink "$f") == "$LAB_DIR/"* ]]; then rm -f "$f"; fi
  done
  for id in "$@"; do
    rm -f /var/lib/cni/results/*-"$id"-*
    for f in /sys/fs/cgroup/*/k8s.io/"$id"; do
      if [ -d "$f" ]; then rmdir "$f" 2>/dev/null || true; fi
    done
  done
  rmdir /sys/fs/cgroup/*/k8s.io /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
}

# Processes in the cgroup of one of the container IDS. containerd puts every container in
# /k8s.io/ID of each cgroup v1 hierarchy (a container's /proc/PID/root reads "/": it is in its
# own mount namespace, so the root path cannot tell).
lab_container_pids() { # ID...
  [ $# -gt 0 ] || return 0
  local -A want=()
  local id p cg
  for id in "$@"; do want[$id]=1; done
  for p in /proc/[0-9]*; do
    cg=$(grep -m1 ':pids:' "$p/cgroup" 2>/dev/null) || continue
    id=${cg##*/}
    [ -n "$id" ] && [ -n "${want[$id]:-}" ] && echo "${p#/proc/}"
  done
  return 0
}

# The IDs of every container the nodes' containerd knew (task state directories).
lab_container_ids() {
  local t
  for t in "$LAB_DIR"/nodes/*/containerd/state/io.containerd.runtime.v2.task/*/*/; do
    [ -d "$t" ] && basename "$t"
  done
  return 0
}

# Unmounts every mount point under DIR, deepest first.
lab_unmount_under() {
  local dir=$1 m
  local -a mounts
  mapfile -t mounts < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  for m in "${mounts[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || lab_warn "could not unmount $m"
  done
}
