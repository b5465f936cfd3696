#!/bin/sh
# sim/late-joiner: a line of 5 nodes; node 0 sends to node 4 at 10 s while
# node 4 is offline; node 4 comes online at 600 s. The message must wait in
# the line, be delivered exactly once when node 4 appears, and its receipt
# must come back to node 0.
set -eu
SIM=$1
. "$(dirname "$0")/lib.sh"

sim_json lj --scenario late-joiner --seed 1
show lj nodes delivered acks_returned latency_mean_s duplicates_delivered transmissions
check "one message, delivered" "j('lj')['messages'] == 1 and j('lj')['delivered'] == 1"
check "delivery ratio 1.0" "j('lj')['delivery_ratio'] == 1.0"
check "the receipt reached the sender" "j('lj')['acks_returned'] == 1"
check "no duplicate delivery" "j('lj')['duplicates_delivered'] == 0"
check "no invariant violation" "j('lj')['invariant_violations'] == 0"
# Sent at 10 s to a node that joins at 600 s: anything faster is impossible.
check "delivered only after the recipient joined" "j('lj')['latency_mean_s'] >= 590.0"
check "delivered soon after it joined" "j('lj')['latency_mean_s'] <= 590.0 + 300.0"
