# shellcheck shell=bash
# The lab network: a switch namespace (flb-sw) with two bridges, br0 (segment 0: 198.18.0.0/24,
# fd00:18::/64) and br1 (segment 1: 198.18.1.0/24, fd00:19::/64), and one namespace per host.
# Every node routes its pods' CIDR (lab_pod_cidr4/6) on its CNI bridge; the other nodes and the
# control-plane host route it via the node's eth0 address, like a flat L2 pod network.
# Both ends of every veth are created directly inside their namespaces: nothing appears in the
# root namespace. Hosts have no default route; the client routes 198.18.0.0/15 and fd00::/8
# (nothing else) through a lab router.

lab_ns_sysctl() { # NS KEY=VALUE...
  local ns=$1
  shift
  ip netns exec "$ns" sysctl -qw "$@" >/dev/null
}

# Deterministic MACs: 02:18:00:SEG:00:ID (locally administered).
lab_host_mac() { printf '02:18:00:%02x:00:%02x' "${2:-0}" "$(lab_host_id "$1")"; }

lab_net_add_port() { # HOST SEGMENT IFNAME
  local host=$1 seg=$2 ifname=$3
  local port="${host#flb-}-e$seg"
  ip -n "$LAB_SWITCH" link add "$port" type veth peer name "$ifname" netns "$host"
  ip -n "$LAB_SWITCH" link set "$port" master "br$seg" up
  ip -n "$host" link set "$ifname" address "$(lab_host_mac "$host" "$seg")"
  ip -n "$host" addr add "$(lab_host_ip4 "$host" "$seg")/24" dev "$ifname"
  ip -n "$host" addr add "$(lab_host_ip6 "$host" "$seg")/64" dev "$ifname" nodad
  ip -n "$host" link set "$ifname" up
}

lab_net_up() {
  local ns host gw
  for ns in "${LAB_NAMESPACES[@]}"; do
    ip netns add "$ns"
  done

  # Switch: plain learning bridges, no IP, no IPv6 on its ports, no multicast snooping (so NS /
  # ARP for any VIP reaches every host), no STP delay.
  lab_ns_sysctl "$LAB_SWITCH" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$LAB_SWITCH" link set lo up
  for seg in 0 1; do
    ip -n "$LAB_SWITCH" link add "br$seg" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip -n "$LAB_SWITCH" link set "br$seg" up
  done

  for host in "${LAB_HOSTS[@]}"; do
    # Namespace defaults must be set before the interfaces exist.
    local -a sysctls=(
      net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
      net.ipv6.conf.default.autoconf=0
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    )
    case $host in
      flb-node*)
        # Forwarding: the node routes for its pods (kube-proxy DNATs to pods on other nodes). No
        # redirects: a node forwarding a Service packet to another node on the same segment is not
        # a better route the client should learn.
        sysctls+=(
          net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.default.arp_ignore=1
          net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.default.arp_announce=2
          net.ipv4.ip_nonlocal_bind=1 net.ipv6.ip_nonlocal_bind=1
          net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1
          net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
        )
        ;;
      flb-frr | flb-bird)
        # ECMP by flow (addresses and ports), so one client's connections spread over the nodes.
        # No redirects: client, routers and nodes share segment 0, and a redirect would teach the
        # client to skip the router (and its ECMP) for a VIP, for minutes.
        sysctls+=(net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1
          net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
          net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0)
        ;;
      "$LAB_CLIENT")
        # IPv6 routers cannot be told not to send redirects; the client ignores them instead.
        sysctls+=(net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0
          net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0)
        ;;
    esac
    lab_ns_sysctl "$host" "${sysctls[@]}"
    ip -n "$host" link set lo up
    lab_net_add_port "$host" 0 eth0
    case $host in
      flb-node* | "$LAB_CLIENT") lab_net_add_port "$host" 1 eth1 ;;
    esac
  done

  case $LAB_CLIENT_GATEWAY in
    frr) gw=flb-frr ;;
    bird) gw=flb-bird ;;
    *) lab_die "LAB_CLIENT_GATEWAY must be frr or bird, not '$LAB_CLIENT_GATEWAY'" ;;
  esac
  ip -n "$LAB_CLIENT" route add 198.18.0.0/15 via "$(lab_host_ip4 "$gw")"
  ip -n "$LAB_CLIENT" -6 route add fd00::/8 via "$(lab_host_ip6 "$gw")"
  lab_net_pod_routes
}

# Pod CIDRs: flb-nodeN has 198.18.(64+N).0/24 and fd00:64:0:N::/64 (inside LAB_CLUSTER_CIDRS).
lab_pod_cidr4() { echo "198.18.$((64 + ${1#flb-node})).0/24"; }
lab_pod_cidr6() { echo "fd00:64:0:${1#flb-node}::/64"; }

lab_net_pod_routes() {
  local n host cidr
  # Services: a node without a route to a ClusterIP fails before kube-proxy's DNAT (OUTPUT) is
  # consulted (real nodes have a default route). Via flb-cp, which drops what no DNAT rewrote.
  for n in "${LAB_NODES[@]}"; do
    for cidr in ${LAB_SERVICE_CIDRS//,/ }; do
      if [[ $cidr == *:* ]]; then
        ip -n "$n" -6 route add "$cidr" via "$(lab_host_ip6 "$LAB_CP")" dev eth0
      else
        ip -n "$n" route add "$cidr" via "$(lab_host_ip4 "$LAB_CP")" dev eth0
      fi
    done
  done
  for n in "${LAB_NODES[@]}"; do
    for host in "$LAB_CP" "${LAB_NODES[@]}"; do
      [ "$host" = "$n" ] && continue
      ip -n "$host" route add "$(lab_pod_cidr4 "$n")" via "$(lab_host_ip4 "$n")" dev eth0
      ip -n "$host" -6 route add "$(lab_pod_cidr6 "$n")" via "$(lab_host_ip6 "$n")" dev eth0
    done
  done
}

lab_net_exists() {
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do
    [ -e "/run/netns/$ns" ] || return 1
  done
}

# Stop every process left inside a lab namespace (daemons, socats, anything tests started there),
# then delete the namespaces (which deletes their veths and bridges).
lab_net_down() {
  local ns
  local -a pids=()
  for ns in "${LAB_NAMESPACES[@]}"; do
    [ -e "/run/netns/$ns" ] || continue
    mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null)
  done
  [ "${#pids[@]}" -gt 0 ] && lab_stop_pids "${pids[@]}"
  for ns in "${LAB_NAMESPACES[@]}"; do
    if [ -e "/run/netns/$ns" ]; then
      ip netns delete "$ns" 2>/dev/null || lab_warn "could not delete namespace $ns"
    fi
  done
  return 0
}
