# shellcheck shell=bash
# BGP routers: FRR (flb-frr, zebra + bgpd [+ bfdd], standalone, no /etc/frr) and BIRD 2 (flb-bird).
# Both peer with every node's IPv4 address (IPv4 unicast) and IPv6 address (IPv6 unicast),
# accept any route inside 198.18.0.0/15 / fd00::/8, export nothing, and install ECMP routes into
# their namespace's kernel table. Settings come from the LAB_* variables in hack/lab.env, so a
# test can re-run `LAB_BGP_PASSWORD=x LAB_BFD=1 hack/lab routers` to reconfigure them.
#
# BFD authentication (with LAB_BFD=1): LAB_BFD_AUTH=keyed-sha1|meticulous-keyed-sha1|keyed-md5|
# meticulous-keyed-md5, LAB_BFD_PASSWORD (the key), LAB_BFD_KEY_ID (default 1). BIRD only: FRR 8.4's
# bfdd has no authentication, so FRR keeps running BFD without it.

LAB_FRR_DIR="$LAB_DIR/frr"
LAB_BIRD_DIR="$LAB_DIR/bird"
LAB_FRR_PROCS=(frr-zebra frr-bgpd frr-bfdd)

# lab_session_lines PASSIVE PASSWORD BFD: of these lines of a router's configuration for the
# nodes (in its syntax), those the lab's settings ask for: LAB_ROUTER_PASSIVE=1, a
# LAB_BGP_PASSWORD, LAB_BFD=1.
lab_session_lines() {
  if [ "$LAB_ROUTER_PASSIVE" = 1 ]; then echo "$1"; fi
  if [ -n "$LAB_BGP_PASSWORD" ]; then echo "$2"; fi
  if [ "$LAB_BFD" = 1 ]; then echo "$3"; fi
}

lab_frr_config() { # writes $LAB_FRR_DIR/{zebra,bgpd,bfdd}.conf
  local id4 n af pg
  id4=$(lab_host_ip4 flb-frr)
  mkdir -p "$LAB_FRR_DIR"
  cat >"$LAB_FRR_DIR/zebra.conf" <<EOF
hostname flb-frr
log stdout informational
ip forwarding
ipv6 forwarding
EOF
  printf 'hostname flb-frr\nlog stdout informational\n' >"$LAB_FRR_DIR/bfdd.conf"
  {
    cat <<EOF
frr version 8.4
frr defaults traditional
hostname flb-frr
log stdout informational
!
ip prefix-list LAB4 seq 5 permit 198.18.0.0/15 le 32
ipv6 prefix-list LAB6 seq 5 permit fd00::/8 le 128
route-map LAB-IN4 permit 10
 match ip address prefix-list LAB4
exit
route-map LAB-IN6 permit 10
 match ipv6 address prefix-list LAB6
exit
route-map LAB-OUT deny 10
exit
!
router bgp $LAB_FRR_AS
 bgp router-id $id4
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 timers bgp $LAB_BGP_KEEPALIVE $LAB_BGP_HOLD
EOF
    for pg in NODES4 NODES6; do
      echo " neighbor $pg peer-group"
      echo " neighbor $pg remote-as $LAB_NODE_AS"
      echo " neighbor $pg timers connect 1"
      lab_session_lines " neighbor $pg passive" " neighbor $pg password $LAB_BGP_PASSWORD" \
        " neighbor $pg bfd"
    done
    for n in "${LAB_NODES[@]}"; do
      echo " neighbor $(lab_host_ip4 "$n") peer-group NODES4"
      echo " neighbor $(lab_host_ip6 "$n") peer-group NODES6"
    done
    for af in 4 6; do
      [ "$af" = 4 ] && echo " address-family ipv4 unicast" || echo " address-family ipv6 unicast"
      echo "  maximum-paths 16"
      echo "  neighbor NODES$af activate"
      echo "  neighbor NODES$af route-map LAB-IN$af in"
      echo "  neighbor NODES$af route-map LAB-OUT out"
      echo " exit-address-family"
    done
    echo "exit"
  } >"$LAB_FRR_DIR/bgpd.conf"
  chown -R frr:frr "$LAB_FRR_DIR"
  chmod 750 "$LAB_FRR_DIR"
}

lab_bird_config() { # writes $LAB_BIRD_DIR/bird.conf
  local n af
  mkdir -p "$LAB_BIRD_DIR"
  {
    cat <<EOF
log stderr all;
router id $(lab_host_ip4 flb-bird);

protocol device { scan time 10; }
protocol kernel kernel4 { ipv4 { import none; export all; }; merge paths on; }
protocol kernel kernel6 { ipv6 { import none; export all; }; merge paths on; }

filter lab_in4 { if net ~ [ 198.18.0.0/15+ ] then accept; reject; }
filter lab_in6 { if net ~ [ fd00::/8+ ] then accept; reject; }
EOF
    if [ "$LAB_BFD" = 1 ]; then
      if [ -n "${LAB_BFD_AUTH:-}" ]; then
        local auth
        case $LAB_BFD_AUTH in
          keyed-sha1) auth="keyed sha1" ;;
          meticulous-keyed-sha1) auth="meticulous keyed sha1" ;;
          keyed-md5) auth="keyed md5" ;;
          meticulous-keyed-md5) auth="meticulous keyed md5" ;;
          *) lab_die "LAB_BFD_AUTH=$LAB_BFD_AUTH: want keyed-sha1, meticulous-keyed-sha1, keyed-md5 or meticulous-keyed-md5" ;;
        esac
        [ -n "${LAB_BFD_PASSWORD:-}" ] || lab_die "LAB_BFD_AUTH needs LAB_BFD_PASSWORD"
        echo "protocol bfd {"
        echo "  interface \"*\" {"
        echo "    authentication $auth;"
        echo "    password \"$LAB_BFD_PASSWORD\" { id ${LAB_BFD_KEY_ID:-1}; };"
        echo "  };"
        echo "}"
      else
        echo "protocol bfd { }"
      fi
    fi
    for af in 4 6; do
      echo
      echo "template bgp nodes$af {"
      echo "  local as $LAB_BIRD_AS;"
      echo "  neighbor as $LAB_NODE_AS;"
      echo "  hold time $LAB_BGP_HOLD; keepalive time $LAB_BGP_KEEPALIVE;"
      echo "  connect delay time 1; connect retry time 1; error wait time 1, 2;"
      lab_session_lines "  passive on;" "  password \"$LAB_BGP_PASSWORD\";" "  bfd on;"
      echo "  ipv$af { import filter lab_in$af; export none; };"
      echo "}"
    done
    for n in "${LAB_NODES[@]}"; do
      echo "protocol bgp ${n//-/_}_v4 from nodes4 { neighbor $(lab_host_ip4 "$n"); }"
      echo "protocol bgp ${n//-/_}_v6 from nodes6 { neighbor $(lab_host_ip6 "$n"); }"
    done
  } >"$LAB_BIRD_DIR/bird.conf"
}

lab_routers_start() {
  local d=$LAB_FRR_DIR
  lab_frr_config
  lab_bird_config
  local -a common=(-f "$d/zebra.conf" -i "$d/zebra.pid" --vty_socket "$d" -P 0 -z "$d/zserv.api")
  lab_spawn frr-zebra --netns flb-frr -- /usr/lib/frr/zebra "${common[@]}"
  if [ "$LAB_BFD" = 1 ]; then
    lab_spawn frr-bfdd --netns flb-frr -- /usr/lib/frr/bfdd \
      -f "$d/bfdd.conf" -i "$d/bfdd.pid" --vty_socket "$d" -P 0 -z "$d/zserv.api" --bfdctl "$d/bfdd.sock"
  fi
  lab_spawn frr-bgpd --netns flb-frr -- /usr/lib/frr/bgpd \
    -f "$d/bgpd.conf" -i "$d/bgpd.pid" --vty_socket "$d" -P 0 -z "$d/zserv.api"
  lab_spawn bird --netns flb-bird -- bird -f -c "$LAB_BIRD_DIR/bird.conf" \
    -s "$LAB_BIRD_DIR/bird.ctl" -P "$LAB_BIRD_DIR/bird.pid"
  {
    echo "LAB_FRR_AS=$LAB_FRR_AS LAB_BIRD_AS=$LAB_BIRD_AS LAB_NODE_AS=$LAB_NODE_AS"
    echo "LAB_ROUTER_PASSIVE=$LAB_ROUTER_PASSIVE LAB_BFD=$LAB_BFD LAB_BGP_PASSWORD=${LAB_BGP_PASSWORD:+(set)}"
    echo "LAB_BFD_AUTH=${LAB_BFD_AUTH:-} LAB_BFD_PASSWORD=${LAB_BFD_PASSWORD:+(set)} LAB_BFD_KEY_ID=${LAB_BFD_KEY_ID:-1}"
    echo "LAB_BGP_KEEPALIVE=$LAB_BGP_KEEPALIVE LAB_BGP_HOLD=$LAB_BGP_HOLD"
  } >"$LAB_STATE/routers.env"
}

lab_routers_wait() {
  if ! lab_wait_for 10 "FRR bgpd" lab_frr_cmd 'show bgp summary' ||
    ! lab_wait_for 10 "BIRD" lab_bird_cmd show status; then
    tail -n 20 "$LAB_LOGS"/frr-*.log "$LAB_LOGS/bird.log" >&2 || true
    lab_die "routers did not start"
  fi
}

lab_routers_stop() {
  lab_stop_named bird "${LAB_FRR_PROCS[@]}"
  rm -f "$LAB_FRR_DIR"/*.pid "$LAB_FRR_DIR"/*.vty "$LAB_FRR_DIR"/zserv.api "$LAB_FRR_DIR"/bfdd.sock \
    "$LAB_BIRD_DIR"/bird.ctl "$LAB_BIRD_DIR"/bird.pid
}

lab_routers_running() {
  lab_running frr-zebra && lab_running frr-bgpd && lab_running bird &&
    { [ ! -f "$LAB_PIDS/frr-bfdd.pid" ] || lab_running frr-bfdd; }
}

lab_frr_cmd() { vtysh --vty_socket "$LAB_FRR_DIR" -c "$*"; }
lab_bird_cmd() { birdc -s "$LAB_BIRD_DIR/bird.ctl" "$@"; }
