# shellcheck shell=bash disable=SC2034  # (globals are used by the other hack/lib files)
# Shared variables and helpers for hack/lab. Sourced, never executed.

PATH="$PATH:/usr/sbin:/sbin"
LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_HACK="$LAB_REPO/hack"
# shellcheck source=hack/lab.env disable=SC1091  # (plain assignments; checked with -x)
. "$LAB_HACK/lab.env"

LAB_DIR="$LAB_REPO/.lab"
LAB_PIDS="$LAB_DIR/pids"
LAB_LOGS="$LAB_DIR/logs"
LAB_PKI="$LAB_DIR/pki"
LAB_STATE="$LAB_DIR/state"
LAB_KUBECONFIG="$LAB_DIR/kubeconfig"
LAB_SERVER="https://127.0.0.1:$LAB_APISERVER_PORT"

# Unix socket that carries the API server into the node namespaces (sun_path is at most 107 bytes).
LAB_APISERVER_SOCK="$LAB_DIR/apiserver.sock"
if [ "${#LAB_APISERVER_SOCK}" -gt 100 ]; then
  LAB_APISERVER_SOCK="/tmp/ferrolb-lab-$(printf %s "$LAB_DIR" | sha256sum | cut -c1-12).sock"
fi

# Every daemon the lab starts carries this variable (value: LAB_DIR). `down` uses it to recognise
# its own processes; it is never exported into the caller's shell.
LAB_OWNER_VAR=FERROLB_LAB_OWNER

# Debian packages the lab needs (CI: apt-get install -y $(hack/lab deps)).
LAB_DEB_PACKAGES=(
  iproute2 procps util-linux coreutils iputils-ping curl openssl socat
  frr bird2 arping ndisc6 shellcheck tcpdump
  # The nodes' container runtime (containerd is built: Debian's 1.6 is too old for Kubernetes
  # 1.36), pod networking, kube-proxy's data path, and the static FerroLB build for the images.
  runc containernetworking-plugins iptables conntrack musl-tools gcc
)

# Namespaces / hosts. IDs are the last address octet (and the IPv6 interface id, written alike).
LAB_SWITCH=flb-sw
case $LAB_NODE_COUNT in [1-9]) ;; *) echo "lab: LAB_NODE_COUNT must be 1..9" >&2; exit 1 ;; esac
LAB_NODES=()
for ((_n = 1; _n <= LAB_NODE_COUNT; _n++)); do LAB_NODES+=("flb-node$_n"); done
unset _n
LAB_ROUTERS=(flb-frr flb-bird)
LAB_CLIENT=flb-client
# The control-plane host: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.
LAB_CP=flb-cp
LAB_HOSTS=("$LAB_CP" "${LAB_NODES[@]}" "${LAB_ROUTERS[@]}" "$LAB_CLIENT")
LAB_NAMESPACES=("$LAB_SWITCH" "${LAB_HOSTS[@]}")

lab_host_id() { # HOST -> 11 | 2 | 3 | 100
  case $1 in
    flb-node[1-9]) echo "1${1#flb-node}" ;;
    flb-frr) echo 2 ;;
    flb-bird) echo 3 ;;
    flb-cp) echo 5 ;;
    flb-client) echo 100 ;;
    *) lab_die "unknown lab host: $1" ;;
  esac
}
lab_host_ip4() { echo "198.18.${2:-0}.$(lab_host_id "$1")"; }           # HOST [SEGMENT]
lab_host_ip6() { echo "fd00:$((18 + ${2:-0}))::$(lab_host_id "$1")"; }  # HOST [SEGMENT]

lab_log() { printf '%s lab: %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
lab_warn() { printf 'lab: WARNING: %s\n' "$*" >&2; }
lab_die() {
  printf 'lab: ERROR: %s\n' "$*" >&2
  exit 1
}
lab_now() { echo "${EPOCHREALTIME/./}"; } # microseconds
lab_elapsed() { # START_US -> "1.23"
  local d=$(($(lab_now) - $1))
  printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

lab_require_root() {
  [ "$(id -u)" = 0 ] || lab_die "needs root (network namespaces)"
}

lab_missing_packages() {
  local p
  local -A ok=()
  while read -r p; do ok[$p]=1; done < <(
    dpkg-query -W -f='${Package} ${Status}\n' "${LAB_DEB_PACKAGES[@]}" 2>/dev/null |
      awk '/ ok installed$/ { print $1 }'
  )
  for p in "${LAB_DEB_PACKAGES[@]}"; do
    [ -n "${ok[$p]:-}" ] || echo "$p"
  done
}

lab_install_deps() {
  local missing
  mapfile -t missing < <(lab_missing_packages)
  [ "${#missing[@]}" = 0 ] && return 0
  lab_log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
}

# Kubernetes binaries: $LAB_BIN, else the dir recorded by the last `up`, else hack/build-k8s.
lab_bin() {
  if [ -n "${LAB_BIN:-}" ]; then
    echo "$LAB_BIN"
  elif [ -x "$(cat "$LAB_STATE/bin-dir" 2>/dev/null)/kubectl" ]; then
    cat "$LAB_STATE/bin-dir"
  else
    "$LAB_HACK/build-k8s"
  fi
}

# The pinned Kubernetes release (hack/k8s/go.mod), e.g. v1.36.3.
lab_k8s_version() {
  awk '$1 == "k8s.io/kubernetes" { print $2; exit } $1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }' \
    "$LAB_HACK/k8s/go.mod"
}

lab_kubectl() { "$LAB_BIN/kubectl" --kubeconfig "$LAB_KUBECONFIG" "$@"; }

# ---- processes -------------------------------------------------------------------------------

# lab_spawn NAME [--netns NS] [--log LOGNAME] -- CMD... : start a daemon detached from the caller
# (own session, stdin from /dev/null, output appended to logs/LOGNAME.log, LOGNAME defaulting to
# NAME) and record its pid in pids/NAME.pid.
lab_spawn() {
  local name=$1 ns='' log=$1
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --netns) ns=$2; shift 2 ;;
      --log) log=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  local -a pre=(env "$LAB_OWNER_VAR=$LAB_DIR")
  [ -n "$ns" ] && pre=(ip netns exec "$ns" "${pre[@]}")
  # No job control in scripts: the child is not a group leader, so setsid does not fork and $!
  # is the daemon's pid (the subshell, ip netns exec and env exec in place). Every inherited
  # descriptor above 2 is closed first: a daemon must not keep the caller's lock (a `flock FILE
  # hack/lab …` around us) or a test runner's pipe open for its whole life.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "${pre[@]}" "$@" </dev/null >>"$LAB_LOGS/$log.log" 2>&1
  ) &
  echo "$!" >"$LAB_PIDS/$name.pid"
}

lab_pid_of() { # NAME -> pid (if the pid file exists)
  local f="$LAB_PIDS/$1.pid"
  [ -f "$f" ] && tr -dc 0-9 <"$f"
}

lab_alive() { # PID (a zombie is not alive)
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Serialise the commands that change the lab (tests may run `hack/lab up` in parallel): an
# exclusive flock on the hack/lab script itself, held on fd 9 until the command exits. Daemons
# are spawned with fd 9 closed, so they never hold it.
lab_lock() {
  exec 9<"$LAB_HACK/lab"
  flock 9
}

lab_running() { # NAME: its pid file names a live process
  lab_alive "$(lab_pid_of "$1")"
}

# Does PID belong to this lab? (it carries the owner marker, or lives in one of the lab namespaces)
lab_owned() {
  local pid=$1
  grep -qsxzF "$LAB_OWNER_VAR=$LAB_DIR" "/proc/$pid/environ" && return 0
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do
    [ -e "/run/netns/$ns" ] || continue
    ip netns pids "$ns" 2>/dev/null | grep -qx "$pid" && return 0
  done
  return 1
}

# lab_stop_pids PID... : TERM, wait up to ~3 s, then KILL. Only lab-owned pids are touched.
lab_stop_pids() {
  local -a pids=()
  local p i
  for p in "$@"; do
    [ -n "$p" ] && [ "$p" != $$ ] && lab_alive "$p" && lab_owned "$p" && pids+=("$p")
  done
  [ "${#pids[@]}" = 0 ] && return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    local -a left=()
    for p in "${pids[@]}"; do lab_alive "$p" && left+=("$p"); done
    [ "${#left[@]}" = 0 ] && return 0
    pids=("${left[@]}")
    sleep 0.05
  done
  lab_warn "killing ${pids[*]} (did not stop on SIGTERM)"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  sleep 0.05
}

lab_stop_named() { # NAME... (pid files)
  local -a pids=()
  local n
  for n in "$@"; do
    pids+=("$(lab_pid_of "$n" || true)")
  done
  lab_stop_pids "${pids[@]}"
  for n in "$@"; do rm -f "$LAB_PIDS/$n.pid"; done
}

# All live processes carrying this lab's owner marker.
lab_marked_pids() {
  local e pid
  while read -r e; do
    pid=${e#/proc/}
    pid=${pid%/environ}
    [ "$pid" = $$ ] || echo "$pid"
  done < <(grep -lsxzF "$LAB_OWNER_VAR=$LAB_DIR" /proc/[0-9]*/environ)
  return 0
}

lab_wait_for() { # TIMEOUT_S DESCRIPTION CMD... : poll every 0.1 s
  local timeout=$1 what=$2 deadline
  shift 2
  deadline=$(($(lab_now) + timeout * 1000000))
  until "$@" >/dev/null 2>&1; do
    [ "$(lab_now)" -lt "$deadline" ] || { lab_warn "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.1
  done
}
