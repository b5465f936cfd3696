#!/bin/sh
# sim/disaster: 200 nodes on a random geometric graph, 20% frame loss, churn,
# crashes, the left and right halves cut apart until half-way. On the same
# seed, ferry must deliver at least 99% of what an ideal flood could reach,
# with at most a tenth of the transmissions per delivered message of the
# naive baseline.
set -eu
SIM=$1
. "$(dirname "$0")/lib.sh"

sim_json ferry --scenario disaster --seed 1 --policy ferry
sim_json naive --scenario disaster --seed 1 --policy naive
for r in ferry naive; do
    show $r policy messages reachable delivered delivery_ratio_reachable tx_per_delivered \
        latency_p50_s copy_seconds
done
check "the workload is meaningful: most messages reachable" \
    "j('ferry')['reachable'] >= 0.9 * j('ferry')['messages']"
check "ferry: delivery_ratio_reachable >= 0.99" "j('ferry')['delivery_ratio_reachable'] >= 0.99"
check "ferry: tx_per_delivered <= naive tx_per_delivered / 10" \
    "j('ferry')['tx_per_delivered'] * 10 <= j('naive')['tx_per_delivered']"
check "no invariant violation" \
    "j('ferry')['invariant_violations'] == 0 and j('naive')['invariant_violations'] == 0"
