#!/bin/sh
# sim/scaling: transmissions per delivered message at 50, 100, 200 and 400
# nodes of a random geometric graph at fixed density (same radius, same
# number of messages), pooled over seeds 1-3 so that one odd graph does not
# decide: tx_per_delivered(N) = sum of transmissions / sum of deliveries.
# The rule: growth is at most linear. Each doubling of the network at most
# doubles the cost per delivered message (25% slack), and the cost per node
# stays bounded (a node relays an item at most once per link, plus repairs
# and receipts: under 1.5 transmissions per node per delivered message).
# Small networks are cheaper than linear (the receipt comes back and cancels
# pending relays before the flood has covered everyone), so a single ratio
# against the smallest size would compound that head start; each doubling is
# checked on its own instead.
set -eu
SIM=$1
. "$(dirname "$0")/lib.sh"

for n in 50 100 200 400; do
    for seed in 1 2 3; do
        sim_json "n$n-s$seed" --topology random --nodes "$n" --radius 1.9 --messages 50 \
            --send-start 0 --send-end 600 --duration 1800 --lifetime 3600 --seed "$seed"
        show "n$n-s$seed" nodes mean_degree reachable delivered tx_per_delivered tx_messages \
            tx_receipts tx_summaries
        check "n=$n seed $seed: delivers what is reachable" \
            "j('n$n-s$seed')['delivery_ratio_reachable'] >= 0.99"
    done
done
pooled="lambda n: sum(j('n%d-s%d' % (n, s))['transmissions'] for s in (1, 2, 3)) / \
sum(j('n%d-s%d' % (n, s))['delivered'] for s in (1, 2, 3))"
python3 - "$TMP" <<'PY'
import json, os, sys
def j(name):
    return json.load(open(os.path.join(sys.argv[1], name)))
for n in (50, 100, 200, 400):
    tx = sum(j('n%d-s%d' % (n, s))['transmissions'] for s in (1, 2, 3))
    d = sum(j('n%d-s%d' % (n, s))['delivered'] for s in (1, 2, 3))
    print("  pooled tx_per_delivered at %d nodes: %.3f" % (n, tx / d))
PY
for pair in "50 100" "100 200" "200 400"; do
    set -- $pair
    check "tx_per_delivered($2) / tx_per_delivered($1) <= 2 * 1.25" \
        "($pooled)($2) <= 2 * 1.25 * ($pooled)($1)"
done
check "tx_per_delivered(400) / 400 < 1.5 (bounded cost per node)" "($pooled)(400) / 400 < 1.5"
