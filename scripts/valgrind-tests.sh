#!/bin/sh
# The multi-process daemon tests with every ferryd under valgrind memcheck
# (scripts/valgrind-ferryd.sh): an invalid access, uninitialised read or
# definite leak makes a daemon exit 99 and its test fail.
set -e
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
export FERRYD_REAL="$here/$build/bin/ferryd"
[ -x "$FERRYD_REAL" ] || { echo "no ferryd at $FERRYD_REAL: build first" >&2; exit 2; }
pass=0 fail=0
for t in test_two_daemons test_restart test_bad_requests test_garbage_udp; do
    if timeout 600 sh "$here/tests/daemon/$t.sh" "$here/scripts/valgrind-ferryd.sh" >"/tmp/ferry-valgrind-$t.log" 2>&1; then
        echo "valgrind: $t passed"; pass=$((pass + 1))
    else
        echo "valgrind: $t FAILED (log: /tmp/ferry-valgrind-$t.log)"; tail -20 "/tmp/ferry-valgrind-$t.log"; fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
