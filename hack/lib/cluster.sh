# shellcheck shell=bash
# Kubernetes objects the lab needs (CRDs, namespace, Node objects) and the API bridge into the
# node namespaces.

# LAB_CRDS=none skips the CRDs.
: "${LAB_CRDS:=$LAB_REPO/crds/ferrolb-crds.yaml}"

lab_cluster_objects() {
  if [ "$LAB_CRDS" = none ]; then
    lab_log "LAB_CRDS=none: no CRDs applied"
  elif [ -f "$LAB_CRDS" ]; then
    lab_kubectl apply --server-side --force-conflicts -f "$LAB_CRDS" >/dev/null ||
      lab_die "could not apply $LAB_CRDS (LAB_CRDS=none skips the CRDs)"
  else
    lab_warn "$LAB_CRDS not found: no CRDs applied"
  fi
  lab_kubectl create namespace "$LAB_FERROLB_NAMESPACE" --dry-run=client -o yaml |
    lab_kubectl apply --server-side -f - >/dev/null
  lab_nodes_create
  if [ "$LAB_CRDS" != none ] && [ -f "$LAB_CRDS" ]; then
    lab_kubectl wait --for condition=established --timeout 30s -f "$LAB_CRDS" >/dev/null
  fi
}

# Node objects for the node hosts, Ready, untainted, with their eth0 addresses. There is no
# kubelet: the status is written once through the status subresource and nothing changes it.
lab_nodes_create() {
  local n now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  {
    for n in "${LAB_NODES[@]}"; do
      cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $n
  labels:
    kubernetes.io/hostname: $n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
EOF
    done
  } | lab_kubectl apply --server-side -f - >/dev/null
  local -a pids=()
  for n in "${LAB_NODES[@]}"; do
    lab_kubectl patch node "$n" --subresource=status --type=merge -p "$(
      cat <<EOF
{"status":{
  "addresses":[
    {"type":"InternalIP","address":"$(lab_host_ip4 "$n")"},
    {"type":"InternalIP","address":"$(lab_host_ip6 "$n")"},
    {"type":"Hostname","address":"$n"}],
  "capacity":{"cpu":"4","memory":"8Gi","pods":"110"},
  "allocatable":{"cpu":"4","memory":"8Gi","pods":"110"},
  "conditions":[{"type":"Ready","status":"True","reason":"FerroLBLab",
    "message":"lab node (no kubelet)","lastHeartbeatTime":"$now","lastTransitionTime":"$now"}]}}
EOF
    )" >/dev/null &
    pids+=($!)
    # The TaintNodesByCondition admission plugin adds node.kubernetes.io/not-ready on create;
    # only the (disabled) node lifecycle controller would remove it.
    lab_kubectl patch node "$n" --type=merge -p '{"spec":{"taints":null}}' >/dev/null &
    pids+=($!)
  done
  local p
  for p in "${pids[@]}"; do wait "$p" || lab_die "could not set the status of the lab nodes"; done
}

# The API server listens on the root namespace's loopback. A root socat exposes it on a unix
# socket; a socat in each node namespace listens on that namespace's 127.0.0.1:PORT and connects
# to the socket. No routing between namespaces is involved.
lab_api_bridge_start() {
  local n
  rm -f "$LAB_APISERVER_SOCK"
  lab_spawn socat-root -- socat "UNIX-LISTEN:$LAB_APISERVER_SOCK,fork,mode=600" \
    "TCP:127.0.0.1:$LAB_APISERVER_PORT"
  for n in "${LAB_NODES[@]}"; do
    lab_spawn "socat-$n" --netns "$n" -- socat \
      "TCP-LISTEN:$LAB_APISERVER_PORT,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$LAB_APISERVER_SOCK"
  done
}

lab_api_bridge_names() {
  local n
  echo socat-root
  for n in "${LAB_NODES[@]}"; do echo "socat-$n"; done
}

lab_api_bridge_stop() {
  local -a names
  mapfile -t names < <(lab_api_bridge_names)
  lab_stop_named "${names[@]}"
  rm -f "$LAB_APISERVER_SOCK"
}
