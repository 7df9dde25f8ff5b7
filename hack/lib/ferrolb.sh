# shellcheck shell=bash
# FerroLB itself, in one of two modes (state/ferrolb-mode):
#   pods       installed as a user installs it: images built here (hack/lib/images.sh) and
#              `kubectl apply -k deploy/`; the controller Deployment (2 replicas) and the speaker
#              DaemonSet run on the lab's kubelets with exactly the securityContext deploy/ ships.
#   processes  the same binaries as supervised processes (what fault-injection tests need: kill -9
#              a speaker, keep it down, restart with other flags, release builds for benchmarks),
#              run like its Deployment (controller, root namespace) and DaemonSet (one speaker per
#              node namespace), each under hack/lib/supervise.sh, which restarts it when it exits.
# Switching stops the other mode first (they would fight over the nodes' ports).
# Processes mode:
#   pids/controller.pid, pids/speaker-flb-nodeN.pid   current child (tests may kill -9 it)
#   pids/supervisor-controller.pid, pids/supervisor-speaker-flb-nodeN.pid
#   logs/controller.log, logs/speaker-flb-nodeN.log   (appended across restarts)
#   state/controller.starts, state/speaker-flb-nodeN.starts   number of starts so far
# By default both use the lab's admin kubeconfig. LAB_RBAC=1 runs them as their pods would run:
# under the ServiceAccounts and RBAC of deploy/rbac (applied to the lab), each with a kubeconfig
# holding a token from `kubectl create token` (ferrolb-controller.kubeconfig,
# ferrolb-speaker.kubeconfig), so a missing permission shows up as 403s and failing tests.

lab_ferrolb_bin_dir() { echo "${FERROLB_BIN_DIR:-$LAB_REPO/target/debug}"; }

# The static binaries the images are made of (hack/build-static; LAB_IMAGE_PROFILE=release|dev).
lab_ferrolb_static_dir() {
  local dir=debug
  [ "${LAB_IMAGE_PROFILE:-dev}" = release ] && dir=release
  echo "${CARGO_TARGET_DIR:-$LAB_REPO/target}/x86_64-unknown-linux-musl/$dir"
}

lab_ferrolb_mode() { cat "$LAB_STATE/ferrolb-mode" 2>/dev/null || echo none; }

# LAB_FERROLB=pods|processes asks for a mode; unset keeps the current one (pods on a new lab).
lab_ferrolb_wanted_mode() {
  local m=${LAB_FERROLB:-}
  if [ -z "$m" ]; then
    m=$(lab_ferrolb_mode)
    [ "$m" = none ] && m=pods
  fi
  case $m in
    pods | processes) echo "$m" ;;
    *) lab_die "LAB_FERROLB must be pods or processes, not '$m'" ;;
  esac
}

# Starts FerroLB in MODE (stopping the other mode first).
lab_ferrolb_switch() { # pods|processes
  lab_ferrolb_stop
  lab_ferrolb_pods_delete
  case $1 in
    pods) lab_ferrolb_pods_install ;;
    processes) lab_ferrolb_start ;;
  esac
  echo "$1" >"$LAB_STATE/ferrolb-mode"
}

lab_ferrolb_up_to_date() { # is FerroLB running in the wanted mode?
  [ "$(lab_ferrolb_mode)" = "$(lab_ferrolb_wanted_mode)" ] || return 1
  case $(lab_ferrolb_mode) in
    pods) lab_ferrolb_pods_ready ;;
    processes) lab_ferrolb_running ;;
  esac
}

# Pods mode: images from the static binaries, imported into every node, then deploy/ applied the
# way docs/install.md says (server-side for the CRDs' size). A rebuilt image has the same tag, so
# the workloads are recreated rather than rolled (IfNotPresent would keep the old image).
lab_ferrolb_pods_install() {
  local sdir c
  sdir=$(lab_ferrolb_static_dir)
  for c in controller speaker; do
    [ -x "$sdir/ferrolb-$c" ] || lab_die "$sdir/ferrolb-$c missing (hack/build-static ${LAB_IMAGE_PROFILE:-dev})"
  done
  lab_images_build_ferrolb
  local n p
  local -a pids=()
  for n in "${LAB_NODES[@]}"; do
    lab_images_import "$n" "$LAB_IMAGES/ferrolb-controller.tar" "$LAB_IMAGES/ferrolb-speaker.tar" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || lab_die "importing FerroLB's images failed"; done
  lab_kubectl apply --server-side --force-conflicts -k "$LAB_REPO/deploy" >/dev/null ||
    lab_die "kubectl apply -k deploy/ failed"
  local w
  for w in deployment/ferrolb-controller daemonset/ferrolb-speaker; do
    if ! lab_kubectl -n "$LAB_FERROLB_NAMESPACE" rollout status "$w" --timeout 120s >&2; then
      lab_kubectl -n "$LAB_FERROLB_NAMESPACE" get pods -o wide >&2 || true
      lab_die "FerroLB's $w did not become ready"
    fi
  done
}

lab_ferrolb_pods_ready() {
  local want ready
  read -r want ready < <(lab_kubectl -n "$LAB_FERROLB_NAMESPACE" get daemonset ferrolb-speaker \
    -o jsonpath='{.status.desiredNumberScheduled} {.status.numberReady}' 2>/dev/null) || return 1
  [ -n "$want" ] && [ "$want" = "$ready" ] || return 1
  ready=$(lab_kubectl -n "$LAB_FERROLB_NAMESPACE" get deployment ferrolb-controller \
    -o jsonpath='{.status.readyReplicas}' 2>/dev/null) || return 1
  [ "${ready:-0}" -ge 1 ]
}

# Deletes the controller Deployment and speaker DaemonSet (RBAC, CRDs and configuration stay) and
# waits until their pods are gone: the speakers leave the membership and withdraw on SIGTERM.
lab_ferrolb_pods_delete() {
  lab_kubectl -n "$LAB_FERROLB_NAMESPACE" delete deployment/ferrolb-controller daemonset/ferrolb-speaker \
    --ignore-not-found --wait=true --timeout 60s >/dev/null 2>&1 || true
  lab_wait_for 60 "FerroLB's pods to terminate" lab_ferrolb_no_pods ||
    lab_warn "FerroLB pods are still terminating"
}

lab_ferrolb_no_pods() {
  [ -z "$(lab_kubectl -n "$LAB_FERROLB_NAMESPACE" get pods -l app.kubernetes.io/name=ferrolb -o name 2>/dev/null)" ]
}

# The speakers' membership key file (in a cluster: the Secret ferrolb-memberlist, mounted). Written
# once per lab, kept across restarts; tests may rewrite it (key rotation) and must restore it.
lab_ferrolb_membership_keys() {
  local file="$LAB_DIR/memberlist-keys"
  if [ ! -s "$file" ]; then
    (
      umask 077
      head -c 32 /dev/urandom | base64 -w0 >"$file.tmp" && echo >>"$file.tmp"
    ) || lab_die "could not write $file"
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

lab_ferrolb_names() { # the child names, one per line
  local n
  echo controller
  for n in "${LAB_NODES[@]}"; do echo "speaker-$n"; done
}

lab_ferrolb_supervise() { # NAME -- CMD...
  local name=$1
  shift 2
  lab_spawn "supervisor-$name" --log "$name" -- "$LAB_HACK/lib/supervise.sh" \
    "$name" "$LAB_PIDS/$name.pid" "$LAB_STATE/$name.starts" -- "$@"
}

# LAB_RBAC=1: applies deploy/rbac (ServiceAccounts, Roles, bindings) in FerroLB's namespace and
# writes LAB_DIR/ferrolb-COMPONENT.kubeconfig with a token of ServiceAccount ferrolb-COMPONENT.
lab_ferrolb_rbac_setup() {
  local sa token
  LAB_BIN=${LAB_BIN:-$(lab_bin)}
  lab_kubectl kustomize "$LAB_REPO/deploy/rbac" |
    sed "s/^\( *namespace:\) ferrolb-system\$/\1 $LAB_FERROLB_NAMESPACE/" |
    lab_kubectl apply --server-side --force-conflicts -f - >/dev/null ||
    lab_die "could not apply deploy/rbac"
  for sa in controller speaker; do
    # A year: the lab never lives that long, and every (re)start writes fresh tokens.
    token=$(lab_kubectl create token "ferrolb-$sa" -n "$LAB_FERROLB_NAMESPACE" --duration 8760h) ||
      lab_die "could not get a token of ServiceAccount ferrolb-$sa"
    lab_kubeconfig "$LAB_DIR/ferrolb-$sa.kubeconfig" "ferrolb-$sa" "$LAB_SERVER" "token: $token"
  done
}

lab_ferrolb_start() {
  local bindir n
  bindir=$(lab_ferrolb_bin_dir)
  local -a cargs sargs
  read -r -a cargs <<<"${FERROLB_CONTROLLER_ARGS:-}"
  read -r -a sargs <<<"${FERROLB_SPEAKER_ARGS:-}"
  local ckube=$LAB_KUBECONFIG skube=$LAB_KUBECONFIG
  if [ "${LAB_RBAC:-0}" = 1 ]; then
    lab_ferrolb_rbac_setup
    ckube="$LAB_DIR/ferrolb-controller.kubeconfig"
    skube="$LAB_DIR/ferrolb-speaker.kubeconfig"
    lab_log "LAB_RBAC=1: the controller and speakers run as ServiceAccounts ferrolb-controller and ferrolb-speaker"
  fi
  local -a env=(env "POD_NAMESPACE=$LAB_FERROLB_NAMESPACE" "RUST_BACKTRACE=${RUST_BACKTRACE:-1}")
  if [ -x "$bindir/ferrolb-controller" ]; then
    # A stable identity, like a pod name: a restarted controller finds the lease its own and
    # leads at once instead of waiting for the lease to expire.
    lab_ferrolb_supervise controller -- "${env[@]}" "KUBECONFIG=$ckube" POD_NAME=ferrolb-controller-lab \
      "$bindir/ferrolb-controller" --namespace "$LAB_FERROLB_NAMESPACE" "${cargs[@]}"
  else
    lab_log "note: $bindir/ferrolb-controller not built: controller not started"
  fi
  if [ -x "$bindir/ferrolb-speaker" ]; then
    local keys
    keys=$(lab_ferrolb_membership_keys)
    for n in "${LAB_NODES[@]}"; do
      lab_ferrolb_supervise "speaker-$n" -- ip netns exec "$n" "${env[@]}" "KUBECONFIG=$skube" "NODE_NAME=$n" \
        "$bindir/ferrolb-speaker" --membership-key-file "$keys" "${sargs[@]}"
    done
  else
    lab_log "note: $bindir/ferrolb-speaker not built: speakers not started"
  fi
  # Wait (briefly) until each supervisor has written its child's pid.
  for n in $(lab_ferrolb_names); do
    if [ -f "$LAB_PIDS/supervisor-$n.pid" ]; then
      lab_wait_for 5 "$n to start" test -s "$LAB_PIDS/$n.pid" || true
    fi
  done
}

lab_ferrolb_stop() {
  local -a sup=() kids=()
  local n
  for n in $(lab_ferrolb_names); do
    sup+=("supervisor-$n")
    kids+=("$n")
  done
  lab_stop_named "${sup[@]}"
  lab_stop_named "${kids[@]}"
  rm -f "$LAB_STATE"/*.starts
}

# Every FerroLB process whose binary exists has a live supervisor.
lab_ferrolb_running() {
  local bindir n
  bindir=$(lab_ferrolb_bin_dir)
  for n in $(lab_ferrolb_names); do
    if [ -x "$bindir/ferrolb-${n%%-*}" ] || [ -f "$LAB_PIDS/supervisor-$n.pid" ]; then
      lab_running "supervisor-$n" || return 1
    fi
  done
}
