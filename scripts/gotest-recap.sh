#!/usr/bin/env bash
# Runs `go test ARGS...` verbosely, drops the === RUN/PAUSE/CONT noise, and on
# failure repeats the failing tests and their reasons at the very end, where a
# CI log that keeps only its tail still shows them.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${GO:-go}" test "$@" 2>&1 | grep --line-buffered -v '^=== \(RUN\|PAUSE\|CONT\|NAME\)' | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ]; then
  echo
  echo "=== recap: go test $* failed (exit $rc)"
  grep -E -- '--- FAIL|violation|not caught|evidence kept|panic:|_test\.go:[0-9]+: .*(want|got|timed out|fail)' "$log" | head -60
fi
exit "$rc"
