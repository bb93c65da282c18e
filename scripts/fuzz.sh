#!/usr/bin/env bash
# Runs every Go fuzz target of the module, one after the other, for
# FUZZTIME each (default 1m):
#
#   scripts/fuzz.sh                       # make fuzz: every package, 1m per target
#   FUZZTIME=10m scripts/fuzz.sh ./token/...
#   FUZZTIME=2s FUZZCACHE=fresh scripts/fuzz.sh   # the brief pass of make test
#
# Targets are discovered, never listed here: packages whose _test.go files
# declare a `func Fuzz...` are built once as an instrumented test binary and
# asked for their targets with -test.list '^Fuzz', so a target added
# anywhere is picked up. (Only those packages are asked, because listing
# runs the package's TestMain.)
#
# Inputs that found new coverage are kept where go test keeps them,
# $GOCACHE/fuzz/<package>, so long runs build on each other. FUZZCACHE=DIR
# keeps them in DIR instead; FUZZCACHE=fresh uses a throwaway directory, so
# the brief pass starts from the committed seeds only and its time does not
# grow with the cache.
#
# A failing target does not stop the others. Its input is written to the
# package's testdata/fuzz/<Target>/ (commit it: it becomes a seed that every
# plain `go test` runs); the failures are listed at the end and the script
# exits 1.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-1m}
cd "$(dirname "$0")/.."
root=$PWD

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "${FUZZCACHE:-}" in
  "") cache=$("$GO" env GOCACHE)/fuzz ;;
  fresh) cache=$work/cache ;;
  *) cache=$FUZZCACHE ;;
esac

patterns=("$@")
[ ${#patterns[@]} -gt 0 ] || patterns=(./...)

# fuzz_one DIR BIN TARGET TIME CACHE fuzzes one target; its output is kept
# in $work/out. The progress lines every 3 s are dropped.
fuzz_one() {
  (cd "$1" && "$2" -test.run='^$' -test.fuzz="^${3}\$" -test.fuzztime="$4" \
    -test.fuzzcachedir="$5") > "$work/out" 2>&1
  local rc=$?
  grep -v '^fuzz: elapsed' "$work/out"
  return $rc
}

# double 2s -> 4s (a duration in s, m or h; anything else is left alone).
double() {
  case "$1" in
    *[0-9]s|*[0-9]m|*[0-9]h) echo "$(( ${1%?} * 2 ))${1: -1}" ;;
    *) echo "$1" ;;
  esac
}

failed=()
count=0
npkg=0
start=$SECONDS
while IFS=' ' read -r dir pkg; do
  grep -lqs '^func Fuzz' "$dir"/*_test.go || continue
  npkg=$((npkg + 1))
  rel=./${dir#"$root"/}
  bin=$work/$(echo "$pkg" | tr '/' '_').test
  if ! "$GO" test -c -fuzz=. -o "$bin" "$rel"; then
    failed+=("$rel (build)")
    continue
  fi
  # The binary runs in the package directory, as go test runs it, so that
  # testdata/ resolves.
  targets=$(cd "$dir" && "$bin" -test.run='^$' -test.list='^Fuzz' | grep '^Fuzz')
  for t in $targets; do
    count=$((count + 1))
    echo "=== fuzz $rel $t ($FUZZTIME)"
    if ! fuzz_one "$dir" "$bin" "$t" "$FUZZTIME" "$cache/$pkg"; then
      # Go's fuzzer can report "context deadline exceeded" when the time
      # runs out while its workers are still measuring the seed corpus on
      # a loaded machine; that is no finding (nothing is written to
      # testdata). Such a target gets one more try with twice the time.
      if grep -q 'context deadline exceeded' "$work/out" && ! grep -q 'Failing input written' "$work/out"; then
        echo "=== fuzz $rel $t: the fuzzer ran out of time before it started; once more with twice the time"
        fuzz_one "$dir" "$bin" "$t" "$(double "$FUZZTIME")" "$cache/$pkg" || failed+=("$rel $t")
      else
        failed+=("$rel $t")
      fi
    fi
  done
done < <("$GO" list -f '{{.Dir}} {{.ImportPath}}' "${patterns[@]}")

echo "=== fuzz: $count targets in $npkg packages, $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "=== fuzz FAILED (rerun one with: go test -run 'Target/<input>' ./pkg):"
  printf '    %s\n' "${failed[@]}"
  exit 1
fi
