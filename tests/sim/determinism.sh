#!/bin/sh
# sim/determinism: the same arguments and seed give byte-identical output
# (stdout, stderr and exit status, JSON and text); another seed gives a
# different run. Covers the broadcast medium with loss, duplication, churn,
# crashes and a partition, and the contact (point-to-point) medium.
set -eu
SIM=$1
. "$(dirname "$0")/lib.sh"

run() {
    # run NAME ARGS...: keep stdout, stderr and the exit status; violations
    # are other tests' business, this one only compares runs.
    name=$1
    shift
    set +e
    "$SIM" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
    set -e
}

same() {
    for ext in out err rc; do
        if ! cmp -s "$TMP/$1.$ext" "$TMP/$2.$ext"; then
            echo "FAIL: $1 and $2 differ ($ext)"
            diff "$TMP/$1.$ext" "$TMP/$2.$ext" | head -n 20
            exit 1
        fi
    done
    echo "ok: $1 and $2 are byte-identical"
}

BCAST="--scenario disaster --nodes 60 --messages 30 --duration 1200 --heal 600 --send-start 10
       --send-end 400 --lifetime 2400 --dup 0.05 --crashes 3 --churn 0.2"
CONTACTS="--scenario contacts --nodes 20 --messages 40 --contact-rate 0.001 --duration 20000
          --send-end 10000 --lifetime 8000"

# shellcheck disable=SC2086
{
    run b1 $BCAST --seed 7 --json
    run b2 $BCAST --seed 7 --json
    run b3 $BCAST --seed 8 --json
    run t1 $BCAST --seed 7
    run t2 $BCAST --seed 7
    run c1 $CONTACTS --seed 7 --json
    run c2 $CONTACTS --seed 7 --json
    run c3 $CONTACTS --seed 8 --json
}
same b1 b2
same t1 t2
same c1 c2
cp "$TMP/b1.out" "$TMP/b1"
cp "$TMP/b3.out" "$TMP/b3"
cp "$TMP/c1.out" "$TMP/c1"
cp "$TMP/c3.out" "$TMP/c3"
show b1 seed delivered transmissions frames_lost events
show b3 seed delivered transmissions frames_lost events
check "another seed changes the broadcast run" \
    "any(j('b1')[k] != j('b3')[k] for k in j('b1') if k != 'seed')"
check "another seed changes the contact run" \
    "any(j('c1')[k] != j('c3')[k] for k in j('c1') if k != 'seed')"
check "the runs did something" "j('b1')['transmissions'] > 0 and j('c1')['contacts'] > 0"
