# shellcheck shell=bash
# The control plane on host flb-cp (198.18.0.5 on segment 0, like a control-plane machine on the
# node LAN): etcd on its loopback, kube-apiserver on all its addresses (kubelets, kube-proxy and
# pods reach it at 198.18.0.5; it reaches the kubelets at their InternalIPs), kube-controller-manager
# and kube-scheduler on its loopback.

LAB_CP_PROCS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

lab_etcd_url() { echo "http://127.0.0.1:$LAB_ETCD_CLIENT_PORT"; }

# etcd and the API server (which retries etcd on its own, so it starts right away). The KCM
# starts once the API server is ready: before the RBAC bootstrap it exits on a 403.
lab_cp_start() {
  lab_etcd_start
  lab_apiserver_start
}

lab_etcd_start() {
  local etcd_url
  etcd_url=$(lab_etcd_url)
  local peer_url="http://127.0.0.1:$LAB_ETCD_PEER_PORT"
  mkdir -p "$LAB_DIR/etcd"
  chmod 700 "$LAB_DIR/etcd"
  lab_spawn etcd --netns "$LAB_CP" -- "$LAB_BIN/etcd" \
    --name ferrolb-lab --data-dir "$LAB_DIR/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "ferrolb-lab=$peer_url" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
}

lab_apiserver_start() {
  lab_spawn kube-apiserver --netns "$LAB_CP" -- "$LAB_BIN/kube-apiserver" \
    --bind-address :: --secure-port "$LAB_APISERVER_PORT" \
    --advertise-address "$(lab_host_ip4 "$LAB_CP")" \
    --kubelet-client-certificate "$LAB_PKI/admin.crt" --kubelet-client-key "$LAB_PKI/admin.key" \
    --kubelet-certificate-authority "$LAB_PKI/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --etcd-servers "$(lab_etcd_url)" \
    --client-ca-file "$LAB_PKI/ca.crt" \
    --tls-cert-file "$LAB_PKI/apiserver.crt" --tls-private-key-file "$LAB_PKI/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$LAB_PKI/sa.pub" \
    --service-account-signing-key-file "$LAB_PKI/sa.key" \
    --service-cluster-ip-range "$LAB_SERVICE_CIDRS" \
    --service-node-port-range "$LAB_NODEPORT_RANGE" \
    --authorization-mode Node,RBAC \
    --allow-privileged=true \
    --profiling=false \
    --v=1
}

lab_kcm_start() {
  lab_write_kubeconfig "$LAB_DIR/kube-controller-manager.kubeconfig" kube-controller-manager system:kube-controller-manager
  lab_spawn kube-controller-manager --netns "$LAB_CP" -- "$LAB_BIN/kube-controller-manager" \
    --kubeconfig "$LAB_DIR/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$LAB_DIR/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$LAB_DIR/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$LAB_KCM_PORT" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$LAB_PKI/sa.key" \
    --root-ca-file "$LAB_PKI/ca.crt" \
    --cluster-signing-cert-file "$LAB_PKI/ca.crt" --cluster-signing-key-file "$LAB_PKI/ca.key" \
    --cluster-name ferrolb-lab \
    --profiling=false \
    --v=1
}

lab_scheduler_start() {
  lab_write_kubeconfig "$LAB_DIR/kube-scheduler.kubeconfig" kube-scheduler system:kube-scheduler
  lab_spawn kube-scheduler --netns "$LAB_CP" -- "$LAB_BIN/kube-scheduler" \
    --kubeconfig "$LAB_DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$LAB_DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$LAB_DIR/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$LAB_SCHEDULER_PORT" \
    --leader-elect=false \
    --profiling=false \
    --v=1
}

lab_apiserver_ready() {
  curl -sf --max-time 2 --cacert "$LAB_PKI/ca.crt" \
    --cert "$LAB_PKI/admin.crt" --key "$LAB_PKI/admin.key" \
    "$LAB_SERVER/readyz" 2>/dev/null | grep -qx ok
}

lab_cp_wait_ready() {
  local p
  if ! lab_wait_for 60 "kube-apiserver /readyz" lab_apiserver_ready; then
    for p in "${LAB_CP_PROCS[@]}"; do
      lab_running "$p" || lab_warn "$p is not running"
      echo "---- tail $LAB_LOGS/$p.log" >&2
      tail -n 15 "$LAB_LOGS/$p.log" >&2 || true
    done
    lab_die "control plane did not become ready"
  fi
}

lab_cp_stop() {
  lab_stop_named kube-scheduler kube-controller-manager
  lab_stop_named kube-apiserver
  lab_stop_named etcd
}
