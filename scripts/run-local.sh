#!/usr/bin/env bash
# Starts a 3-node Tally cluster on loopback (HTTP 127.0.0.1:7101-7103),
# provisions a demo license and waits; Ctrl-C stops all three nodes.
# State lives in .tally-run/ and is wiped on every start.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/tally
DIR=.tally-run
ADDRS=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103

for port in 7101 7102 7103 7201 7202 7203 7301 7302 7303; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is in use: is another Tally (make run, tally dev) still running?" >&2
    exit 1
  fi
done

rm -rf "$DIR"
mkdir -p "$DIR"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/admin-token"
chmod 600 "$DIR/admin-token"

pids=()
stop() {
  echo
  echo "stopping the cluster..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped. Logs are in $DIR/n*.log"
}
trap stop EXIT
trap 'exit 0' INT TERM

for i in 1 2 3; do
  "$BIN" agent --node-id "n$i" --data-dir "$DIR/n$i" \
    --http-addr "127.0.0.1:710$i" --raft-addr "127.0.0.1:720$i" --gossip-addr "127.0.0.1:730$i" \
    --bootstrap-expect 3 --join 127.0.0.1:7301 --join 127.0.0.1:7302 --join 127.0.0.1:7303 \
    --admin-token-file "$DIR/admin-token" >"$DIR/n$i.log" 2>&1 &
  pids+=($!)
done
echo "started n1, n2, n3 (logs in $DIR/n*.log); waiting for a leader..."

TALLY_ADDR=$ADDRS TALLY_TOKEN=$(cat "$DIR/admin-token") "$BIN" demo
cat <<MSG
Kill the leader to watch failover:
  $BIN status                       # who leads?
  kill -9 \$(pgrep -f 'node-id nX')  # X = the leader's number
  $BIN checkout --key ... --feature cad   # still works through the survivors

Press Ctrl-C to stop all three nodes.
MSG
wait
