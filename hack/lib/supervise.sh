#!/usr/bin/env bash
# Tiny process supervisor (a stand-in for a Deployment / DaemonSet pod):
#   supervise.sh NAME CHILD_PIDFILE STARTS_FILE -- CMD...
# Runs CMD, writes the current child's pid to CHILD_PIDFILE (atomically replaced on every start;
# it names the exited child during the ~200 ms before the restart), counts starts in STARTS_FILE,
# and restarts CMD ~200 ms after it exits. Output goes to the supervisor's stdout/stderr.
# SIGTERM/SIGINT: stop the child (TERM, then KILL after 5 s), remove CHILD_PIDFILE and exit.
# While CHILD_PIDFILE.hold exists, an exited child is not restarted (tests use it to keep a killed
# speaker down, like a node that is gone, and remove it to bring the speaker back).
set -uo pipefail
if [ $# -lt 5 ] || [ "$4" != -- ]; then
  echo "usage: $0 NAME CHILD_PIDFILE STARTS_FILE -- CMD..." >&2
  exit 2
fi
name=$1 pidfile=$2 starts_file=$3
shift 4
child=
stamp() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

stop() {
  trap '' TERM INT HUP
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$child" 2>/dev/null
  fi
  rm -f "$pidfile"
  echo "supervise[$name] $(stamp): stopped" >&2
  exit 0
}
trap stop TERM INT HUP

starts=0
while :; do
  starts=$((starts + 1))
  "$@" </dev/null &
  child=$!
  echo "$child" >"$pidfile.tmp" && mv -f "$pidfile.tmp" "$pidfile"
  echo "$starts" >"$starts_file"
  echo "supervise[$name] $(stamp): start #$starts pid $child: $*" >&2
  wait "$child"
  rc=$?
  echo "supervise[$name] $(stamp): pid $child exited with status $rc; restarting in 200 ms" >&2
  child=
  sleep 0.2
  while [ -e "$pidfile.hold" ]; do sleep 0.05; done
done
