#!/bin/sh
# Crash safety, repeated: bob (the receiver) stays up; alice (the sender) is
# started, given pipelined sends with unique texts, and killed with SIGKILL
# after a random 0..300 ms, TRIALS times. Then alice runs once more until
# everything she accepted went out. At bob: every send that got an ok reply
# is delivered exactly once (by text), and no text arrives twice.
#
# The delays come from a seeded PRNG; the seed is printed, and
# KILL_LOOP_SEED=N reproduces a run's schedule. Bounded: at most about
# 2 s per trial plus the final drain (60 s).
. "$(dirname "$0")/lib.sh" "$@"

TRIALS=${KILL_LOOP_TRIALS:-50}
PER_TRIAL=40 # sends offered per trial; a kill usually comes before the end
SEED=${KILL_LOOP_SEED:-$(($(date +%s) % 1000000))}
echo "kill loop: $TRIALS trials, seed $SEED (KILL_LOOP_SEED=$SEED reproduces the schedule)"

# A 31-bit LCG (the constants of the C standard's example rand()).
rng=$SEED
next_delay_ms() {
    rng=$(((rng * 1103515245 + 12345) % 2147483648))
    delay=$(((rng / 65536) % 301))
}

set -- $($CTL ports 2)
PA=$1 PB=$2
start bob "$PB" "$PA"
start alice "$PA" "$PB"
$CTL wait-user "$(sock alice)" bob 20
crash alice

: >"$T/acked"
t=1
while [ "$t" -le "$TRIALS" ]; do
    next_delay_ms
    start alice "$PA" "$PB"
    $CTL flood-texts "$(sock alice)" bob "$PER_TRIAL" "kill-$SEED-t$t" "$T/acked" \
        >"$T/flood.out" 2>&1 &
    FLOOD=$!
    STARTED="$STARTED $FLOOD"
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    crash alice
    # The sender ends by itself once the socket is gone (bounded by its
    # own 10 s socket timeout).
    wait "$FLOOD" || true
    [ -z "${KILL_LOOP_VERBOSE:-}" ] ||
        echo "trial $t: killed after $delay ms, $(cat "$T/flood.out") sends acknowledged"
    t=$((t + 1))
done
accepted=$(wc -l <"$T/acked")
echo "trials=$TRIALS accepted=$accepted (before the final run)"
[ "$accepted" -gt 0 ] || fail "no send was ever acknowledged: the kills came too early"

# The final run: alice up until bob holds everything she accepted.
start alice "$PA" "$PB"
$CTL check-texts "$(sock bob)" "$T/acked" "kill-$SEED-" 60 >"$T/verdict" ||
    { cat "$T/verdict"; fail "seed $SEED: see above"; }
# Give late duplicates, if any, time to show up before the final count.
sleep 3
$CTL check-texts "$(sock bob)" "$T/acked" "kill-$SEED-" 5 >"$T/verdict" ||
    { cat "$T/verdict"; fail "seed $SEED: see above"; }
echo "trials=$TRIALS $(cat "$T/verdict")"
stop alice
stop bob
echo "PASS"
