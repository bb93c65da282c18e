#!/usr/bin/env bash
# bench/compare/run.sh: raw hashicorp/raft vs Tally vs etcd, on this
# machine, in one run (see docs/performance.md).
#
#   bench/compare/run.sh [--json]
#
# Environment: DURATION (per concurrency, default 10s), CONCURRENCY
# (default 1,16,64,256), SEATS (default 256), ETCD_VERSION (the etcd
# server to build from the Go module proxy, default v3.6.16; the driver's
# client is v3.6.16), ETCD_BIN (use this etcd binary instead of building).
#
# It builds ./cmd/tally, the driver (this directory, its own Go module) and
# etcd; measures raw raft (in the driver's process), then a 3-node Tally
# cluster, then a 3-member etcd cluster, one at a time; and prints the
# table (or JSON). Every process it starts and its temp dir are removed on
# exit, also on Ctrl-C.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-1,16,64,256}
SEATS=${SEATS:-256}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
REPORT_FLAGS=()
for arg in "$@"; do
  case "$arg" in
    --json) REPORT_FLAGS+=(-json) ;;
    *) echo "usage: $0 [--json]" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tally-compare.XXXXXX")
pids=()  # cluster processes
fg_pid=  # the step being waited for
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  if [ -n "$fg_pid" ]; then kill "$fg_pid" 2>/dev/null || true; wait "$fg_pid" 2>/dev/null || true; fi
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# run_fg runs a long step in the background and waits for it: bash runs a
# trap only between commands, and `wait` is one it can interrupt, so
# Ctrl-C stops everything at once instead of after the step.
run_fg() {
  "$@" &
  fg_pid=$!
  local rc=0
  wait "$fg_pid" || rc=$?
  fg_pid=
  return "$rc"
}

say() { echo "== $*" >&2; }
export GOWORK=off

say "building tally and the driver"
(cd "$ROOT" && go build -o "$WORK/tally" ./cmd/tally)
(cd "$HERE" && go build -o "$WORK/compare" .)
COMPARE=$WORK/compare

ETCD=${ETCD_BIN:-}
if [ -z "$ETCD" ]; then
  say "building etcd $ETCD_VERSION from the Go module proxy (a minute the first time)"
  mkdir -p "$WORK/etcd-build"
  # `go install` refuses etcd's server module (it has replace directives);
  # a module that requires it and builds it by path works.
  printf 'module etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$WORK/etcd-build/go.mod"
  if run_fg bash -c 'cd "$1" && go get "go.etcd.io/etcd/server/v3@$2" &&
      go build -o "$3" go.etcd.io/etcd/server/v3' _ "$WORK/etcd-build" "$ETCD_VERSION" "$WORK/etcd" \
      >"$WORK/etcd-build.log" 2>&1; then
    ETCD=$WORK/etcd
  else
    tail -5 "$WORK/etcd-build.log" >&2
  fi
fi
if [ -z "$ETCD" ]; then
  echo "etcd: could not build etcd $ETCD_VERSION from the Go module proxy; the etcd column is skipped" >&2
fi

RUN=("$COMPARE" run -c "$CONCURRENCY" -duration "$DURATION" -seats "$SEATS")
results=()

say "raw raft: 3 nodes in the driver's process, loopback TCP, boltdb"
run_fg "${RUN[@]}" -backend raft -dir "$WORK/raft" -out "$WORK/raft.json"
results+=("$WORK/raft.json")

say "tally: 3 agents on loopback"
mapfile -t P < <("$COMPARE" ports 9)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/admin-token"
chmod 600 "$WORK/admin-token"
join=(--join "127.0.0.1:${P[6]}" --join "127.0.0.1:${P[7]}" --join "127.0.0.1:${P[8]}")
addrs=()
for i in 0 1 2; do
  "$WORK/tally" agent --node-id "n$((i + 1))" --data-dir "$WORK/tally-n$i" \
    --http-addr "127.0.0.1:${P[i]}" --raft-addr "127.0.0.1:${P[i + 3]}" --gossip-addr "127.0.0.1:${P[i + 6]}" \
    --bootstrap-expect 3 "${join[@]}" --admin-token-file "$WORK/admin-token" --log-level warn \
    >"$WORK/tally-n$i.log" 2>&1 &
  pids+=($!)
  addrs+=("127.0.0.1:${P[i]}")
done
if ! run_fg "${RUN[@]}" -backend tally -addrs "$(IFS=,; echo "${addrs[*]}")" -token-file "$WORK/admin-token" -out "$WORK/tally.json"; then
  tail -n 20 "$WORK"/tally-n*.log >&2
  exit 1
fi
results+=("$WORK/tally.json")
stop_all

if [ -n "$ETCD" ]; then
  say "etcd: 3 members on loopback ($("$ETCD" --version | head -1))"
  mapfile -t P < <("$COMPARE" ports 6)
  cluster="e1=http://127.0.0.1:${P[3]},e2=http://127.0.0.1:${P[4]},e3=http://127.0.0.1:${P[5]}"
  urls=()
  for i in 0 1 2; do
    "$ETCD" --name "e$((i + 1))" --data-dir "$WORK/etcd-e$i" \
      --listen-client-urls "http://127.0.0.1:${P[i]}" --advertise-client-urls "http://127.0.0.1:${P[i]}" \
      --listen-peer-urls "http://127.0.0.1:${P[i + 3]}" --initial-advertise-peer-urls "http://127.0.0.1:${P[i + 3]}" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token tally-compare \
      --log-level warn >"$WORK/etcd-e$i.log" 2>&1 &
    pids+=($!)
    urls+=("http://127.0.0.1:${P[i]}")
  done
  if run_fg "${RUN[@]}" -backend etcd -addrs "$(IFS=,; echo "${urls[*]}")" -out "$WORK/etcd.json"; then
    results+=("$WORK/etcd.json")
  else
    tail -n 20 "$WORK"/etcd-e*.log >&2
    echo "etcd: the run failed (logs above); the etcd column is skipped" >&2
  fi
  stop_all
fi

"$COMPARE" report "${REPORT_FLAGS[@]}" "${results[@]}"
