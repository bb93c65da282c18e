#!/usr/bin/env bash
# Measures every performance target of docs/performance.md, one after the
# other on this machine, and keeps each step's full output in a directory
# (printed at the end) with a short summary on the terminal. About 20
# minutes on 2 cores. Run it with nothing else loading the machine: every
# step shares the same cores between the cluster and its load.
#
#   scripts/measure-targets.sh [STEP...]
#
# Steps (all by default, in this order): compare validate heartbeat storm
# failover restore rss. Environment: DURATION (compare, per concurrency,
# default 10s), LEASES (storm, default 100000), TRIALS (failover, default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(compare validate heartbeat storm failover restore rss)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/tally-targets.XXXXXX")
BIN=./bin/tally
go build -o "$BIN" ./cmd/tally

step() { printf '\n== %s (%s, load average %s)\n' "$1" "$(date -u +%H:%M:%S)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

for s in "${STEPS[@]}"; do
  case "$s" in
    compare)
      step "hot-license checkouts: raw raft vs Tally vs etcd"
      DURATION=${DURATION:-10s} bench/compare/run.sh | tee "$OUT/compare.txt"
      ;;
    validate)
      step "stale validation on a follower over HTTP, c=64"
      "$BIN" bench validate --local 3 --node follower --clients 64 --duration 10s 2>/dev/null | tee "$OUT/validate.txt" | sed -n 1,8p
      step "stale validation in process"
      go test -run '^$' -bench 'NodeValidateStale|HTTPValidateStale' -benchtime 3s ./node/ | tee "$OUT/validate-bench.txt" | grep '^Benchmark'
      ;;
    heartbeat)
      step "heartbeats through the leader of 3 nodes, c=64"
      go test -run '^$' -bench 'HTTPHeartbeat/nodes=3/c=64' -benchtime 5s -count 3 ./node/ | tee "$OUT/heartbeat.txt" | grep '^Benchmark'
      ;;
    storm)
      step "expiry storm of ${LEASES:-100000} leases"
      "$BIN" bench expiry-storm --local 3 --leases "${LEASES:-100000}" --ttl 120s 2>/dev/null | tee "$OUT/storm.txt" | sed -n 1,16p
      ;;
    failover)
      for p in default lan; do
        step "failover, --raft-profile $p"
        scripts/measure-failover.sh "$p" "${TRIALS:-5}" 2>&1 | tee "$OUT/failover-$p.txt" | tail -2
      done
      ;;
    restore)
      step "snapshot restore of 100k licenses and 1M leases (in process)"
      go test -run '^$' -bench 'Restore1M' -benchtime 1x -count 2 ./fsm/ | tee "$OUT/restore.txt" | grep '^Benchmark'
      ;;
    rss)
      step "RSS per node at 100k licenses and 1M leases"
      scripts/measure-rss.sh 2>&1 | tee "$OUT/rss.txt" | tail -12
      ;;
    *) echo "unknown step $s (steps: compare validate heartbeat storm failover restore rss)" >&2; exit 2 ;;
  esac
done
printf '\nfull output in %s\n' "$OUT"
