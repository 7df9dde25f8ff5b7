# shellcheck shell=bash
# FerroLB itself, run like its Deployment (controller, root namespace) and DaemonSet (one speaker
# per node namespace), each under hack/lib/supervise.sh, which restarts it when it exits.
#   pids/controller.pid, pids/speaker-flb-nodeN.pid   current child (tests may kill -9 it)
#   pids/supervisor-controller.pid, pids/supervisor-speaker-flb-nodeN.pid
#   logs/controller.log, logs/speaker-flb-nodeN.log   (appended across restarts)
#   state/controller.starts, state/speaker-flb-nodeN.starts   number of starts so far

lab_ferrolb_bin_dir() { echo "${FERROLB_BIN_DIR:-$LAB_REPO/target/debug}"; }

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

lab_ferrolb_start() {
  local bindir n
  bindir=$(lab_ferrolb_bin_dir)
  local -a cargs sargs
  read -r -a cargs <<<"${FERROLB_CONTROLLER_ARGS:-}"
  read -r -a sargs <<<"${FERROLB_SPEAKER_ARGS:-}"
  local -a env=(env "KUBECONFIG=$LAB_KUBECONFIG" "POD_NAMESPACE=$LAB_FERROLB_NAMESPACE"
    "RUST_BACKTRACE=${RUST_BACKTRACE:-1}")
  if [ -x "$bindir/ferrolb-controller" ]; then
    # A stable identity, like a pod name: a restarted controller finds the lease its own and
    # leads at once instead of waiting for the lease to expire.
    lab_ferrolb_supervise controller -- "${env[@]}" POD_NAME=ferrolb-controller-lab "$bindir/ferrolb-controller" \
      --namespace "$LAB_FERROLB_NAMESPACE" "${cargs[@]}"
  else
    lab_log "note: $bindir/ferrolb-controller not built: controller not started"
  fi
  if [ -x "$bindir/ferrolb-speaker" ]; then
    for n in "${LAB_NODES[@]}"; do
      lab_ferrolb_supervise "speaker-$n" -- ip netns exec "$n" "${env[@]}" "NODE_NAME=$n" \
        "$bindir/ferrolb-speaker" "${sargs[@]}"
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
