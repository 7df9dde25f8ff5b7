#!/usr/bin/env bash
# Measures speaker membership failover on a real network: three speakers in
# namespaces t-mem-1..3 (198.18.210.1-3/24), cabled to a bridge in t-mem-sw.
# For each fault (SIGKILL, bridge port down, SIGTERM/leave) it prints the time
# until each other speaker drops the victim from its live set, and the
# median/p99 of the slower of the two. Touches nothing but the namespaces it
# creates and the processes it starts; removes both on exit.
#
#   sudo speaker/src/membership/lab.sh [ROUNDS]      (from the repo root)
set -euo pipefail

ROUNDS=${1:-12}
SW="t-mem-sw"
PORT=7946
SEEDS=node-1=198.18.210.1:$PORT,node-2=198.18.210.2:$PORT,node-3=198.18.210.3:$PORT
OUT=$(mktemp -d /tmp/t-mem.XXXXXX)
# The speakers' shared membership key (authentication costs are part of what
# is measured).
head -c 32 /dev/urandom | base64 -w0 >"$OUT/keys"
declare -A PID=()

cleanup() {
    for i in "${!PID[@]}"; do kill -9 "${PID[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in t-mem-1 t-mem-2 t-mem-3 "$SW"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT

BIN=$(cargo test -p ferrolb-speaker --lib --no-run 2>&1 |
    grep -o 'target/debug/deps/ferrolb_speaker-[0-9a-f]*' | tail -1)
[ -x "$BIN" ] || { echo "test binary not found" >&2; exit 1; }

# --- network ---------------------------------------------------------------
ip netns add "$SW"
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
for i in 1 2 3; do
    ns=t-mem-$i
    ip netns add "$ns"
    # Both veth ends are created inside namespaces, never in the host's.
    ip -n "$SW" link add "p$i" type veth peer name eth0 netns "$ns"
    ip -n "$SW" link set "p$i" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "198.18.210.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
done

now_us() { date +%s%6N; }

start_node() { # i
    local i=$1
    ip netns exec "t-mem-$i" env FLB_MEM_NODE="node-$i" FLB_MEM_BIND="198.18.210.$i:$PORT" \
        FLB_MEM_SEEDS="$SEEDS" FLB_MEM_KEYS="$OUT/keys" RUST_BACKTRACE=1 RUST_LOG="${RUST_LOG:-warn}" \
        "$BIN" membership::lab::lab_node --ignored --exact --nocapture --test-threads=1 \
        >>"$OUT/node-$i.log" 2>&1 &
    PID[$i]=$!
}

# Waits until every running node's latest LIVE line lists all three.
wait_converged() {
    local deadline=$(($(date +%s) + 15))
    while :; do
        local ok=1
        for i in 1 2 3; do
            local last
            last=$(awk '$1=="LIVE" {l=$4} END {print l}' "$OUT/node-$i.log" 2>/dev/null || true)
            [ "$last" = "node-1,node-2,node-3" ] || ok=0
        done
        [ $ok = 1 ] && return 0
        [ "$(date +%s)" -lt $deadline ] || { echo "no convergence" >&2; return 1; }
        sleep 0.05
    done
}

# Prints "<observer-1 µs> <observer-2 µs>" for victim $1 dropped after $2.
detections() { # victim since
    local v=$1 since=$2 o t
    for o in 1 2 3; do
        [ "$o" = "$v" ] && continue
        t=$(awk -v s="$since" -v v="node-$v" '$1=="EV" && $2>=s && $4=="down" && $5==v {print $2; exit}' \
            "$OUT/node-$o.log")
        if [ -n "$t" ]; then echo -n "$((t - since)) "; else echo -n "NA "; fi
    done
    echo
}

summary() { # file label
    awk -v label="$2" '{m=($1>$2)?$1:$2; print m}' "$1" | sort -n |
        awk -v label="$2" '{a[NR]=$1} END {
            if (NR == 0) { print label ": no data"; exit }
            p50 = a[int((NR + 1) / 2)]; i99 = int(NR * 0.99 + 0.999); if (i99 < 1) i99 = 1
            printf "%-10s n=%d  median %.1f ms  p99 %.1f ms  min %.1f ms  max %.1f ms\n",
                label, NR, p50 / 1000, a[i99] / 1000, a[1] / 1000, a[NR] / 1000 }'
}

for i in 1 2 3; do start_node "$i"; done
wait_converged
sleep 1

for fault in ${FAULTS:-kill link leave}; do
    : >"$OUT/$fault.txt"
    for r in $(seq 1 "$ROUNDS"); do
        v=$(((r - 1) % 3 + 1))
        # Random phase relative to the probe cycle.
        sleep "0.$((RANDOM % 900 + 100))"
        t=$(now_us)
        echo "FAULT $t $fault node-$v" >>"$OUT/faults.log"
        case $fault in
        kill) kill -9 "${PID[$v]}" ;;
        link) ip -n "$SW" link set "p$v" down ;;
        leave) kill -TERM "${PID[$v]}" ;;
        esac
        sleep 1.5
        d=$(detections "$v" "$t")
        echo "$fault round $r victim node-$v: $d(µs)"
        case "$d" in *NA*) ;; *) echo "$d" >>"$OUT/$fault.txt" ;; esac
        case $fault in
        kill | leave)
            wait "${PID[$v]}" 2>/dev/null || true
            start_node "$v"
            ;;
        link)
            h=$(now_us)
            echo "RESTORE $h link node-$v" >>"$OUT/faults.log"
            ip -n "$SW" link set "p$v" up
            ;;
        esac
        wait_converged
        if [ "$fault" = link ]; then echo "  healed after link up in $((($(now_us) - h) / 1000)) ms"; fi
        sleep 0.5
    done
done

echo
echo "time until both other speakers dropped the victim:"
for fault in ${FAULTS:-kill link leave}; do summary "$OUT/$fault.txt" "$fault"; done
echo "logs: $OUT"
