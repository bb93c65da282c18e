#!/usr/bin/env bash
# Measures memory at the scale target: writes a snapshot of 100k licenses
# and 1M live leases (scripts/gensnap; deadlines hours ahead, so nothing
# expires meanwhile), starts 3 agents on loopback (ports 7141-7143,
# 7241-7243, 7341-7343), restores the snapshot with
# `tally operator snapshot restore`, waits until every node has applied it
# and has run a garbage collection since, and prints each node's VmRSS and
# VmHWM from /proc/PID/status, its Go heap in use, and when each node had
# the restored state. Linux only; takes a few minutes.
#
#   scripts/measure-rss.sh [LICENSES] [LEASES_PER_LICENSE]
set -euo pipefail
cd "$(dirname "$0")/.."
LICENSES=${1:-100000}
PER=${2:-10}
BIN=./bin/tally
GEN=./bin/gensnap
go build -o "$BIN" ./cmd/tally
go build -o "$GEN" ./scripts/gensnap
DIR=$(mktemp -d)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/token"
declare -A pids
cleanup() {
  local rc=$?
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  if (( rc != 0 )) && [ -f "$DIR/agents.log" ]; then echo "agents' log:"; tail -n 40 "$DIR/agents.log"; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

"$GEN" -licenses "$LICENSES" -leases-per-license "$PER" -out "$DIR/big.snap"

for i in 1 2 3; do
  "$BIN" agent --node-id "n$i" --data-dir "$DIR/n$i" --http-addr "127.0.0.1:714$i" \
    --raft-addr "127.0.0.1:724$i" --gossip-addr "127.0.0.1:734$i" --bootstrap-expect 3 \
    --join 127.0.0.1:7341 --join 127.0.0.1:7342 --join 127.0.0.1:7343 \
    --admin-token-file "$DIR/token" --log-level warn 2>>"$DIR/agents.log" &
  pids[$i]=$!
done
export TALLY_ADDR=127.0.0.1:7141,127.0.0.1:7142,127.0.0.1:7143 TALLY_TOKEN=$(cat "$DIR/token")
until "$BIN" status >/dev/null 2>&1; do sleep 0.2; done

field() { grep -o "\"$2\": *[0-9]*" <<<"$1" | grep -o '[0-9]*$'; }
applied() { field "$(curl -sf "http://127.0.0.1:714$1/v1/status" || true)" applied_index; }
metric() { curl -sf "http://127.0.0.1:714$1/metrics" | awk -v m="$2" '$1==m{printf "%d", $2}'; }
mem() { awk -v k="$2:" '$1==k{print $2}' "/proc/${pids[$1]}/status"; } # kB

echo "before the restore:"
for i in 1 2 3; do printf '  n%s VmRSS %6d MiB  VmHWM %6d MiB\n' "$i" $(( $(mem "$i" VmRSS) / 1024 )) $(( $(mem "$i" VmHWM) / 1024 )); done

# The restore puts the state 65536 entries past the leader's last index
# (node/restore.go), far above anything the idle cluster reached before.
base=0
for i in 1 2 3; do a=$(applied "$i"); (( a > base )) && base=$a; done
threshold=$(( base + 65536 ))
start=$(date +%s%N)
for i in 1 2 3; do
  ( until a=$(applied "$i") && [ -n "$a" ] && (( a >= threshold )); do sleep 0.1; done
    echo $(( ($(date +%s%N) - start) / 1000000 )) > "$DIR/had.$i" ) &
done
"$BIN" operator snapshot restore --json "$DIR/big.snap" > "$DIR/restore.json"
cli_ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait_all() { for i in 1 2 3; do until [ -s "$DIR/had.$i" ]; do sleep 0.1; done; done; }
wait_all
res=$(cat "$DIR/restore.json")
leader=$("$BIN" status 2>/dev/null | awk '$3=="leader"{print $1}')
echo "restore of $(stat -c %s "$DIR/big.snap") bytes ($(field "$res" licenses) licenses, $(field "$res" leases) leases):"
echo "  leader $leader: restored in $(field "$res" duration_ms) ms after the upload; the CLI returned after ${cli_ms} ms"
for i in 1 2 3; do echo "  n$i had the restored state after $(cat "$DIR/had.$i") ms"; done

# Settle: wait for a garbage collection on every node after the restore
# (the Go runtime forces one at least every 2 minutes).
declare -A gc0
for i in 1 2 3; do gc0[$i]=$(metric "$i" go_gc_duration_seconds_count); done
for i in 1 2 3; do until (( $(metric "$i" go_gc_duration_seconds_count) > gc0[$i] )); do sleep 1; done; done
sleep 5

KEY=TLY-RSS-$(printf '%024d' 0)
lease=$("$BIN" checkout --json --key "$KEY" --feature cad --request-id rss-check | grep -o '"id": "lse_[a-z0-9]*"' | cut -d'"' -f4)
"$BIN" checkin "$lease" --key "$KEY" >/dev/null
echo "checkout after the restore: ok ($lease)"

echo "after the restore and a GC:"
for i in 1 2 3; do
  printf '  n%s VmRSS %6d MiB  VmHWM %6d MiB  Go heap in use %6d MiB\n' "$i" \
    $(( $(mem "$i" VmRSS) / 1024 )) $(( $(mem "$i" VmHWM) / 1024 )) $(( $(metric "$i" go_memstats_heap_inuse_bytes) / 1048576 ))
done
