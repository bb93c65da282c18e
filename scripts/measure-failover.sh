#!/usr/bin/env bash
# Measures failover as a user sees it: start 3 agents on loopback (ports
# 7111-7113, 7211-7213, 7311-7313), provision the demo license, then per
# trial kill -9 the leader and time `tally checkout` through the survivors,
# from the kill to the answer. The killed node is restarted between trials.
#
#   scripts/measure-failover.sh [PROFILE] [TRIALS]     # PROFILE: default | lan
#   AGENT_ARGS="--heartbeat-timeout 300ms" scripts/measure-failover.sh   # try other timings
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-default}
TRIALS=${2:-5}
BIN=./bin/tally
go build -o "$BIN" ./cmd/tally
DIR=$(mktemp -d)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/token"
declare -A pids
start() { # start node i
  local i=$1
  "$BIN" agent --node-id "n$i" --data-dir "$DIR/n$i" --http-addr "127.0.0.1:711$i" \
    --raft-addr "127.0.0.1:721$i" --gossip-addr "127.0.0.1:731$i" --bootstrap-expect 3 \
    --join 127.0.0.1:7311 --join 127.0.0.1:7312 --join 127.0.0.1:7313 \
    --admin-token-file "$DIR/token" --raft-profile "$PROFILE" ${AGENT_ARGS:-} --log-level error 2>>"$DIR/agents.log" &
  pids[$i]=$!
}
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
for i in 1 2 3; do start "$i"; done
export TALLY_ADDR=127.0.0.1:7111,127.0.0.1:7112,127.0.0.1:7113 TALLY_TOKEN=$(cat "$DIR/token")
KEY=$("$BIN" demo | grep -o 'TLY-[A-Z0-9-]*' | head -1)
times=()
for t in $(seq "$TRIALS"); do
  leader=$("$BIN" status 2>/dev/null | awk '$3=="leader"{print $1}')
  i=${leader#n}
  kill -9 "${pids[$i]}"; wait "${pids[$i]}" 2>/dev/null || true
  s=$(date +%s%N)
  lease=$("$BIN" checkout --json --key "$KEY" --feature cad --request-id "failover-$t" | grep -o '"id": "lse_[a-z0-9]*"' | cut -d'"' -f4)
  e=$(date +%s%N)
  ms=$(( (e - s) / 1000000 ))
  times+=("$ms")
  echo "trial $t: killed $leader, checkout answered after ${ms} ms"
  "$BIN" checkin "$lease" --key "$KEY" >/dev/null
  start "$i"
  # Wait until all three answer and agree on a leader before the next kill.
  until "$BIN" status >/dev/null 2>&1; do sleep 0.2; done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
echo "profile $PROFILE: median ${median} ms over $TRIALS trials"
