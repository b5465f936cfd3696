#!/bin/sh
# sim/contacts: homogeneous mixing, every pair meets as a Poisson process of
# rate beta, each meeting a 1 s point-to-point link.
#
# 1. Epidemic routing's mean delay is H(N-1) / (beta (N-1)). beta is chosen
#    per N so that this is 1000 s; 2000 messages spread over 400,000 s rarely
#    overlap, so their delays are nearly independent (standard error of the
#    mean about 1%); a 10,000 s lifetime outlasts every delay. The naive
#    policy (send everything at every meeting) must match within 5%.
# 2. Receipts that purge: ferry's copy-seconds must be at least 10x lower
#    than ferry without purging (lifetime 30x the delay), and copies must be
#    gone a few delivery delays after delivery (median <= 4x the mean delay).
#
# --dedupe-capacity 2048 (instead of the engine's default) keeps the engines'
# once-a-minute dedupe sweep cheap over these long virtual runs; at most a
# few hundred ids are live per node here.
set -eu
SIM=$1
. "$(dirname "$0")/lib.sh"

beta() {
    python3 -c "import sys; n = int(sys.argv[1]); h = sum(1.0 / k for k in range(1, n)); print('%.12g' % (h / ((n - 1) * 1000.0)))" "$1"
}

for n in 20 50 100; do
    b=$(beta "$n")
    sim_json "naive$n" --scenario contacts --policy naive --nodes "$n" --contact-rate "$b" \
        --contact-duration 1 --latency 1 --messages 2000 --send-start 0 --send-end 400000 \
        --lifetime 10000 --duration 410000 --dedupe-capacity 2048 --seed "$n"
    show "naive$n" nodes contacts delivered latency_mean_s latency_p50_s latency_p95_s
    check "N=$n: everything delivered" "j('naive$n')['delivery_ratio'] == 1.0"
    check "N=$n: naive mean latency within 5% of H(N-1)/(beta(N-1))" \
        "abs(j('naive$n')['latency_mean_s'] / (H($n - 1) / ($b * ($n - 1))) - 1.0) <= 0.05"
done

b=$(beta 50)
for p in purge no-purge; do
    flag=""
    [ "$p" = no-purge ] && flag="--no-purge"
    # shellcheck disable=SC2086
    sim_json "$p" --scenario contacts --policy ferry $flag --nodes 50 --contact-rate "$b" \
        --contact-duration 1 --latency 1 --messages 500 --send-start 0 --send-end 200000 \
        --lifetime 30000 --duration 230000 --dedupe-capacity 2048 --seed 50
    show "$p" purge delivered latency_mean_s copy_seconds purge_p50_s unpurged tx_per_delivered
done
check "ferry delivers everything" "j('purge')['delivery_ratio'] == 1.0"
check "copy_seconds at least 10x lower with purging" \
    "j('purge')['copy_seconds'] * 10 <= j('no-purge')['copy_seconds']"
check "copies purged within a few delivery delays (p50 <= 4x mean latency)" \
    "j('purge')['purge_p50_s'] is not None and j('purge')['purge_p50_s'] <= 4 * j('purge')['latency_mean_s']"
