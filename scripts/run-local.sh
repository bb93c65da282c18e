#!/usr/bin/env bash
# Starts a 3-node Tally cluster on loopback (HTTP 127.0.0.1:7101-7103),
# provisions a demo license and waits; Ctrl-C stops all three nodes.
# State lives in .tally-run/ and is wiped on every start.
#
#   scripts/run-local.sh              start the cluster (make run)
#   scripts/run-local.sh restart n3   start a node you killed again, with
#                                     its data, from another terminal
#
# For tests that run it beside other clusters: TALLY_LOCAL_PORT_OFFSET is
# added to every port (default 0), TALLY_LOCAL_DIR replaces .tally-run and
# TALLY_LOCAL_BIN replaces ./bin/tally.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TALLY_LOCAL_BIN:-./bin/tally}
DIR=${TALLY_LOCAL_DIR:-.tally-run}
OFF=${TALLY_LOCAL_PORT_OFFSET:-0}
http_port() { echo $((7100 + OFF + $1)); }
raft_port() { echo $((7200 + OFF + $1)); }
gossip_port() { echo $((7300 + OFF + $1)); }
ADDRS=127.0.0.1:$(http_port 1),127.0.0.1:$(http_port 2),127.0.0.1:$(http_port 3)

# start_node N starts node nN in the background, appending to its log, and
# records its pid so that Ctrl-C in the first terminal stops it too.
start_node() {
  local i=$1
  "$BIN" agent --node-id "n$i" --data-dir "$DIR/n$i" \
    --http-addr "127.0.0.1:$(http_port "$i")" --raft-addr "127.0.0.1:$(raft_port "$i")" \
    --gossip-addr "127.0.0.1:$(gossip_port "$i")" --bootstrap-expect 3 \
    --join "127.0.0.1:$(gossip_port 1)" --join "127.0.0.1:$(gossip_port 2)" --join "127.0.0.1:$(gossip_port 3)" \
    --admin-token-file "$DIR/admin-token" >>"$DIR/n$i.log" 2>&1 &
  echo $! >"$DIR/n$i.pid"
  # The shell need not report a node the user kills on purpose.
  disown $!
}

if [ "${1:-}" = restart ]; then
  node=${2:-}
  case "$node" in
    n1|n2|n3) ;;
    *) echo "usage: $0 restart n1|n2|n3" >&2; exit 2 ;;
  esac
  if [ ! -d "$DIR/$node" ]; then
    echo "no $DIR/$node: start the cluster with make run first" >&2
    exit 1
  fi
  pid=$(cat "$DIR/$node.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "$node is running (pid $pid)" >&2
    exit 1
  fi
  start_node "${node#n}"
  echo "restarted $node (pid $(cat "$DIR/$node.pid")); it rejoins with its data and catches up. Log: $DIR/$node.log"
  exit 0
fi

for i in 1 2 3; do for port in $(http_port $i) $(raft_port $i) $(gossip_port $i); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is in use: is another Tally (make run, tally dev) still running?" >&2
    exit 1
  fi
done; done

rm -rf "$DIR"
mkdir -p "$DIR"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/admin-token"
chmod 600 "$DIR/admin-token"

stop() {
  echo
  echo "stopping the cluster..."
  for f in "$DIR"/n*.pid; do kill "$(cat "$f")" 2>/dev/null || true; done
  # A restarted node is not this shell's child: poll until every node is gone.
  for _ in $(seq 150); do
    alive=0
    for f in "$DIR"/n*.pid; do kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  rm -f "$DIR"/n*.pid
  if [ -n "${sleeper:-}" ]; then kill "$sleeper" 2>/dev/null || true; fi
  echo "stopped. Logs are in $DIR/n*.log"
}
trap stop EXIT
trap 'exit 0' INT TERM

for i in 1 2 3; do start_node "$i"; done
echo "started n1, n2, n3 (logs in $DIR/n*.log); waiting for a leader..."

TALLY_ADDR=$ADDRS TALLY_TOKEN=$(cat "$DIR/admin-token") "$BIN" demo
cat <<MSG
Kill the leader to watch failover, then bring it back:
  tally status                              # who leads? (STATE leader)
  kill -9 \$(cat $DIR/nX.pid)         # X = the leader's number
  tally checkout --key ... --feature cad    # still works through the survivors
  scripts/run-local.sh restart nX           # it rejoins and catches up

Press Ctrl-C to stop all three nodes.
MSG
# Wait on a sleep, not on the nodes: the cluster lives on while any node is
# killed or restarted, until Ctrl-C.
sleep infinity &
sleeper=$!
wait $sleeper
