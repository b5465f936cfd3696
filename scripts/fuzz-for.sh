#!/bin/sh
# Run every fuzz target for N seconds from its seed corpus and print how many
# inputs each executed. New inputs go to a scratch dir in the build tree;
# crashes are written there too (copy them into tests/fuzz/corpus/<target>/
# as regression seeds).
set -e
build="$1"; secs="$2"
[ -d "$build/bin" ] && [ -n "$secs" ] || { echo "usage: $0 BUILD_DIR SECONDS" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/bin/fuzz_*; do
    name=$(basename "$bin"); short=${name#fuzz_}
    scratch="$build/fuzz-scratch/$short"; mkdir -p "$scratch"
    log="$build/fuzz-scratch/$short.log"
    if "$bin" -max_total_time="$secs" -artifact_prefix="$scratch/" "$scratch" "$here/tests/fuzz/corpus/$short" >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see $log)"; status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    printf '%-16s %12s executions in %ss: %s\n' "$name" "$execs" "$secs" "$result"
done
exit $status
