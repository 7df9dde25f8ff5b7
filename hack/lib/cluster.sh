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

# Node objects for the node hosts, created before their kubelets register (a kubelet adopts an
# existing Node), so that each has the pod CIDRs its CNI configuration uses. The kubelets write
# addresses, capacity and conditions; the node lifecycle controller removes the not-ready taint.
lab_nodes_create() {
  local n
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
spec:
  podCIDR: $(lab_pod_cidr4 "$n")
  podCIDRs: [$(lab_pod_cidr4 "$n"), "$(lab_pod_cidr6 "$n")"]
EOF
    done
  } | lab_kubectl apply --server-side -f - >/dev/null || lab_die "could not create the Node objects"
}

# The API server listens in flb-cp. A socat there exposes it on a unix socket; a socat in the
# root namespace and in each node namespace listens on that namespace's 127.0.0.1:PORT and connects
# to the socket, so the admin kubeconfig (server 127.0.0.1:PORT) works everywhere, and tests on a
# node reach the API even while that node's links are cut. The root namespace never gets a route
# into the lab. (Kubelets, kube-proxy and pods use 198.18.0.5 over the lab network, as in a cluster.)
lab_api_bridge_start() {
  local n
  rm -f "$LAB_APISERVER_SOCK"
  lab_spawn socat-cp --netns "$LAB_CP" -- socat "UNIX-LISTEN:$LAB_APISERVER_SOCK,fork,mode=600" \
    "TCP:127.0.0.1:$LAB_APISERVER_PORT"
  lab_spawn socat-root -- socat \
    "TCP-LISTEN:$LAB_APISERVER_PORT,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$LAB_APISERVER_SOCK"
  for n in "${LAB_NODES[@]}"; do
    lab_spawn "socat-$n" --netns "$n" -- socat \
      "TCP-LISTEN:$LAB_APISERVER_PORT,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$LAB_APISERVER_SOCK"
  done
}

lab_api_bridge_names() {
  local n
  echo socat-cp
  echo socat-root
  for n in "${LAB_NODES[@]}"; do echo "socat-$n"; done
}

lab_api_bridge_stop() {
  local -a names
  mapfile -t names < <(lab_api_bridge_names)
  lab_stop_named "${names[@]}"
  rm -f "$LAB_APISERVER_SOCK"
}
