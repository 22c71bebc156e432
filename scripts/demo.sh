#!/usr/bin/env bash
# Demo: a client namespace talks to a "node" namespace over a veth pair; the
# agent (deploy/sluice-demo.yaml) puts the XDP prefilter on the node's end.
# Shows allowed vs denied traffic, the counters, a run-time deny, the
# datapath surviving a SIGKILL of the agent, and a full cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/build/bin
CFG=$ROOT/deploy/sluice-demo.yaml
SOCK=/run/sluice/demo.sock
CLIENT=sluice-demo-client
NODE=sluice-demo-node
LOG=$(mktemp /tmp/sluice-demo-agent.XXXXXX.log)
AGENT_PID=

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
if [ ! -x "$BIN/sluice-agent" ] || [ ! -x "$BIN/sluicectl" ]; then
  scripts/setup.sh
fi

teardown() {
  set +e
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  ip netns exec "$NODE" "$BIN/sluice-agent" --config "$CFG" --cleanup >/dev/null 2>&1
  ip netns del "$CLIENT" 2>/dev/null
  ip netns del "$NODE" 2>/dev/null
  rm -rf /var/lib/sluice-demo "$LOG"
}
trap teardown EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ping_from() {  # ping_from SRC DST: prints the outcome, never fails the demo
  if ip netns exec "$CLIENT" ping -n -c 2 -W 1 -I "$1" "$2" >/dev/null 2>&1; then
    echo "  $1 -> $2: replies (passed)"
  else
    echo "  $1 -> $2: no reply (dropped)"
  fi
}
start_agent() {
  ip netns exec "$NODE" "$BIN/sluice-agent" --config "$CFG" >>"$LOG" 2>&1 &
  AGENT_PID=$!
  for _ in $(seq 50); do
    "$BIN/sluicectl" --socket "$SOCK" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "agent did not start:"; cat "$LOG"; exit 1
}

step "Topology: $CLIENT (198.18.20.1, denied 198.51.100.7) <-veth-> $NODE (198.18.20.2)"
teardown; trap teardown EXIT
ip route replace blackhole 198.18.0.0/15 metric 4294967295
ip netns add "$CLIENT"; ip netns add "$NODE"
ip link add veth-client netns "$CLIENT" type veth peer name veth-node0 netns "$NODE"
ip -n "$CLIENT" addr add 198.18.20.1/24 dev veth-client
ip -n "$CLIENT" addr add 198.51.100.7/32 dev veth-client
ip -n "$CLIENT" link set veth-client up
ip -n "$NODE" addr add 198.18.20.2/24 dev veth-node0
ip -n "$NODE" link set veth-node0 up
# A node's loopback is up (the agent's metrics endpoint listens on it).
ip -n "$NODE" link set lo up
ip -n "$NODE" route add 198.51.100.0/24 dev veth-node0

step "Before the agent: both sources get replies"
ping_from 198.18.20.1 198.18.20.2
ping_from 198.51.100.7 198.18.20.2

step "Start sluice-agent in $NODE with $CFG"
start_agent
"$BIN/sluicectl" --socket "$SOCK" prefilter list | sed 's/^/  deny /'

step "With the prefilter: 198.51.100.0/24 is dropped at XDP"
ping_from 198.18.20.1 198.18.20.2
ping_from 198.51.100.7 198.18.20.2
"$BIN/sluicectl" --socket "$SOCK" status

step "Deny 198.18.20.1/32 at run time (no reload), then remove it"
"$BIN/sluicectl" --socket "$SOCK" prefilter add 198.18.20.1/32
ping_from 198.18.20.1 198.18.20.2
"$BIN/sluicectl" --socket "$SOCK" prefilter delete 198.18.20.1/32
ping_from 198.18.20.1 198.18.20.2

step "A bad CIDR is rejected and changes nothing"
"$BIN/sluicectl" --socket "$SOCK" prefilter add 10.0.0.1/8 || true

step "SIGKILL the agent: the pinned link keeps dropping"
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
ping_from 198.51.100.7 198.18.20.2
echo "  pinned objects:"; find /sys/fs/bpf/sluice-demo -type f | sed 's/^/    /'

step "Restart: the same link is updated in place"
start_agent
grep -E "replaced in place|attached" "$LOG" | tail -1 | sed 's/^/  /'
"$BIN/sluicectl" --socket "$SOCK" status | sed -n '/Attachments/,/^$/p'

step "Cleanup: sluice-agent --cleanup removes every link and pin"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
ip netns exec "$NODE" "$BIN/sluice-agent" --config "$CFG" --cleanup
ping_from 198.51.100.7 198.18.20.2
[ -e /sys/fs/bpf/sluice-demo ] && echo "  pins remain!" || echo "  /sys/fs/bpf/sluice-demo is gone"
echo
echo "demo finished"
