# shellcheck shell=bash
# Lab PKI with openssl: one CA (also the cluster signing CA), the API server serving cert,
# client certs for the admin (system:masters), kube-controller-manager, kube-scheduler and
# kube-proxy, per node a kubelet client cert (system:node:NAME, for the Node authorizer) and a
# kubelet serving cert, and the service-account key pair. ECDSA P-256 throughout: generating it takes milliseconds.

lab_pki_cert() { # NAME SUBJECT EXTENSIONS... : key + cert signed by the lab CA
  local name=$1 subj=$2
  shift 2
  local -a ext=()
  local e
  for e in "$@"; do ext+=(-addext "$e"); done
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -CA "$LAB_PKI/ca.crt" -CAkey "$LAB_PKI/ca.key" -days 3650 -subj "$subj" \
    -keyout "$LAB_PKI/$name.key" -out "$LAB_PKI/$name.crt" "${ext[@]}" 2>/dev/null
}

lab_pki_generate() {
  mkdir -p "$LAB_PKI"
  chmod 700 "$LAB_PKI"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 3650 \
    -subj "/CN=ferrolb-lab-ca" -keyout "$LAB_PKI/ca.key" -out "$LAB_PKI/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  local svc4=${LAB_SERVICE_CIDRS%%,*}
  local kube_svc4="${svc4%.*/*}.1"    # 198.19.0.0/20 -> 198.19.0.1
  lab_pki_cert apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:::1,IP:$kube_svc4,IP:$(lab_host_ip4 "$LAB_CP"),IP:$(lab_host_ip6 "$LAB_CP"),DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" "basicConstraints=critical,CA:FALSE"
  lab_pki_cert admin "/O=system:masters/CN=ferrolb-lab-admin" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" "basicConstraints=critical,CA:FALSE"
  lab_pki_cert kube-controller-manager "/CN=system:kube-controller-manager" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" "basicConstraints=critical,CA:FALSE"
  lab_pki_cert kube-scheduler "/CN=system:kube-scheduler" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" "basicConstraints=critical,CA:FALSE"
  lab_pki_cert kube-proxy "/CN=system:kube-proxy" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" "basicConstraints=critical,CA:FALSE"
  local n
  for n in "${LAB_NODES[@]}"; do
    lab_pki_cert "kubelet-$n" "/O=system:nodes/CN=system:node:$n" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" "basicConstraints=critical,CA:FALSE"
    lab_pki_cert "kubelet-serving-$n" "/CN=$n" \
      "subjectAltName=DNS:$n,IP:$(lab_host_ip4 "$n"),IP:$(lab_host_ip6 "$n")" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" "basicConstraints=critical,CA:FALSE"
  done
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$LAB_PKI/sa.key" 2>/dev/null
  openssl pkey -in "$LAB_PKI/sa.key" -pubout -out "$LAB_PKI/sa.pub" 2>/dev/null
}

# lab_kubeconfig FILE USER SERVER CREDENTIAL...: a kubeconfig for the lab's cluster at SERVER
# as USER, whose credentials are the CREDENTIAL lines (`token: ...`, `client-key-data: ...`).
lab_kubeconfig() {
  local file=$1 user=$2 server=$3
  shift 3
  local tmp="$file.tmp" line
  {
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferrolb-lab
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$LAB_PKI/ca.crt")
users:
- name: $user
  user:
EOF
    for line in "$@"; do
      echo "    $line"
    done
    cat <<EOF
contexts:
- name: ferrolb-lab
  context:
    cluster: ferrolb-lab
    user: $user
current-context: ferrolb-lab
EOF
  } >"$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$file"
}

# lab_write_kubeconfig FILE CERT_NAME USER [SERVER]: USER authenticated by the lab CA's
# certificate CERT_NAME.
lab_write_kubeconfig() {
  lab_kubeconfig "$1" "$3" "${4:-$LAB_SERVER}" \
    "client-certificate-data: $(base64 -w0 <"$LAB_PKI/$2.crt")" \
    "client-key-data: $(base64 -w0 <"$LAB_PKI/$2.key")"
}
