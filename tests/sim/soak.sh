#!/bin/sh
# sim/soak: one virtual hour of the disaster world at 200 nodes, with a
# heavier workload (500 messages over the first half hour), crashes and
# restarts, and messages that live 20 minutes. Checks the safety record and
# that what nodes hold stays bounded and drains: by the end every message's
# lifetime is over, so no delivered message may still be held anywhere, and
# the copy-seconds integral cannot exceed "every node held every message for
# its whole lifetime".
set -eu
SIM=$1
. "$(dirname "$0")/lib.sh"

NODES=200
DURATION=3600
LIFETIME=1200
MESSAGES=500
sim_json soak --scenario disaster --seed 11 --nodes $NODES --duration $DURATION \
    --messages $MESSAGES --send-end 1800 --lifetime $LIFETIME --crashes 5
show soak nodes duration_s messages delivered delivery_ratio_reachable duplicates_delivered \
    copy_seconds unpurged dropped_before_delivery deadline_stalls events invariant_violations
check "no invariant violation (memory bounds are among them)" \
    "j('soak')['invariant_violations'] == 0"
check "no duplicate delivery" "j('soak')['duplicates_delivered'] == 0"
check "no delivered message still held at the end" "j('soak')['unpurged'] == 0"
check "copies held are bounded by lifetimes: copy_seconds <= messages * nodes * lifetime" \
    "j('soak')['copy_seconds'] <= $MESSAGES * $NODES * $LIFETIME"
check "mean copies held per node stay small (< 50)" \
    "j('soak')['copy_seconds'] / ($NODES * $DURATION) < 50"
check "no engine stalled on a past deadline" "j('soak')['deadline_stalls'] == 0"
check "the world still delivers: delivery_ratio_reachable >= 0.95" \
    "j('soak')['delivery_ratio_reachable'] >= 0.95"
