#!/bin/sh
# sim/adversary: the adversary scenario (100 nodes, 10% loss, crashes, MTU
# 64, half an hour) with one adversary of each kind on its own, then all
# five together, and the contacts scenario (pairwise meetings) with a
# tamperer and with a replayer. Each active run has an idle twin: the same
# seed, the same adversary nodes and honest workload, but the adversaries
# behave. The
# simulator checks its invariants at every step and exits non-zero on any
# violation (no premature purge, no re-entry after a purge, exactly-once
# delivery of untampered text, the victim's name bound to its key, the
# flooder's items within the per-origin quota, memory bounds); this script
# checks that each attack really happened and what it cost.
set -eu
SIM=$1
. "$(dirname "$0")/lib.sh"

SC="--scenario adversary --seed 1"
for k in forge-receipts replay flood forge-announce tamper; do
    # shellcheck disable=SC2086
    sim_json "$k" $SC --adversary "$k"
    # shellcheck disable=SC2086
    sim_json "$k-idle" $SC --adversary "$k" --idle-adversaries
done
# shellcheck disable=SC2086
sim_json all $SC --adversary all
# shellcheck disable=SC2086
sim_json all-again $SC --adversary all
CT="--scenario contacts --seed 1"
for k in tamper replay; do
    # shellcheck disable=SC2086
    sim_json "contacts-$k" $CT --adversary "$k"
    # shellcheck disable=SC2086
    sim_json "contacts-$k-idle" $CT --adversary "$k" --idle-adversaries
done

show forge-receipts messages delivered acks_returned forged_receipts_sent receipts_unmatched \
    purges_before_delivery unpurged
show replay delivered replays_sent replayed_receipts_sent duplicates_delivered reentries unpurged
show flood delivery_ratio flood_sent flood_items_max origin_quota quota_rejects transmissions
show flood-idle delivery_ratio transmissions
show forge-announce forged_announces_sent name_conflicts_seen name_rebinds victim_messages \
    victim_delivered
show tamper delivery_ratio_reachable tampered_sent adversary_malformed frags_poisoned \
    auth_failures foreign_items
show tamper-idle delivery_ratio_reachable
show tamper transmissions
show tamper-idle transmissions
show all delivery_ratio_reachable adv_frames_sent purges_before_delivery reentries \
    flood_items_max name_rebinds events
show contacts-tamper delivery_ratio_reachable auth_failures foreign_items transmissions
show contacts-tamper-idle delivery_ratio_reachable transmissions
show contacts-replay delivered replays_sent duplicates_delivered reentries resurrected unpurged

for k in forge-receipts replay flood forge-announce tamper all contacts-tamper contacts-replay; do
    check "$k: no invariant violation" "j('$k')['invariant_violations'] == 0"
done
check "idle twins deliver every reachable message" \
    "all(j(k + '-idle')['delivery_ratio_reachable'] == 1.0 for k in
         ['forge-receipts', 'replay', 'flood', 'forge-announce', 'tamper', 'contacts-tamper',
          'contacts-replay'])"

# Forged receipts: plenty were sent, none purged anything, and the real ones
# still work: delivery as in the honest twin (one message of slack for the
# shifted loss draws), every delivery acknowledged.
check "forge-receipts: forgeries were sent" "j('forge-receipts')['forged_receipts_sent'] >= 500"
check "forge-receipts: no purge before delivery" \
    "j('forge-receipts')['purges_before_delivery'] == 0"
check "forge-receipts: delivery as in the honest run" \
    "j('forge-receipts')['delivered'] >= j('forge-receipts-idle')['delivered'] - 1"
check "forge-receipts: every delivered message acknowledged" \
    "j('forge-receipts')['acks_returned'] == j('forge-receipts')['delivered']"

# Replays: old messages and receipts, some with a fresh lifetime, delivered
# nowhere twice and stored nowhere again after their receipt.
check "replay: replays were sent, receipts among them" \
    "j('replay')['replays_sent'] >= 500 and j('replay')['replayed_receipts_sent'] > 0"
check "replay: no duplicate delivery, no re-entry" \
    "j('replay')['duplicates_delivered'] == 0 and j('replay')['reentries'] == 0"
check "replay: delivery as in the honest run" \
    "j('replay')['delivered'] >= j('replay-idle')['delivered'] - 1"

# Flood: 2000 valid messages from one key. Measured on seeds 1-5: the
# honest delivery ratio is the same with and without the flooder (1.0, and
# 0.98 on seed 5 where two messages were unreachable): the simulator has no
# airtime limit, so the flood costs transmissions (2.7-3.7x), not delivery,
# as long as the quota holds. The rule keeps 5% of margin for the shifted
# random draws; the quota itself is checked at every store write.
check "flood: the flood filled the quota somewhere" \
    "j('flood')['flood_sent'] == 2000 and j('flood')['flood_items_max'] == j('flood')['origin_quota']"
check "flood: quota refusals happened" "j('flood')['quota_rejects'] > 0"
check "flood: honest delivery ratio >= 0.95 x without the flooder" \
    "j('flood')['delivery_ratio'] >= 0.95 * j('flood-idle')['delivery_ratio']"

# Forged announce: every honest node heard the claim and flagged it (the
# crashes restart three engines from their stores); none binds the name to
# the attacker, and messages sent by name reach the victim.
check "forge-announce: the claim was heard and flagged widely" \
    "j('forge-announce')['name_conflicts_seen'] >= 90"
check "forge-announce: no rebinding" "j('forge-announce')['name_rebinds'] == 0"
check "forge-announce: messages by name reach the victim" \
    "(j('forge-announce')['victim_messages'] > 0 and
      j('forge-announce')['victim_delivered'] == j('forge-announce')['victim_messages'])"

# Tamper: corrupted copies, ids and fragments circulated and were refused;
# none was delivered (a violation otherwise). Relays cannot tell a corrupted
# copy from the real one under the same id and keep whichever came first, so
# when every neighbour of a recipient holds a corrupted copy the real one
# cannot get in: on the broadcast medium seeds 1-5 lost 1, 2, 0, 0, 0 of
# about 100 messages on their own and 2, 0, 0, 0, 0 with all five kinds.
# The 0.95 floor leaves room for about twice the worst of those. With
# pairwise contacts the recipient meets holders of the real copy: seeds 1-5
# delivered all 200, and 0.99 catches a recipient that keeps a copy it
# cannot open (its summaries then claim the message, and the real copy is
# never offered: 189-195 of 200 before core/node.c stopped keeping them).
check "tamper: corrupted frames were sent and refused" \
    "j('tamper')['tampered_sent'] >= 500 and j('tamper')['adversary_malformed'] > 0"
check "tamper: corrupted copies reached relays and recipients" \
    "j('tamper')['foreign_items'] > 0 and j('tamper')['auth_failures'] > 0"
check "tamper: no honest frame rejected except after a tamperer's lie" \
    "j('tamper')['malformed_frames'] == 0"
check "tamper: delivery_ratio_reachable >= 0.95" \
    "j('tamper')['delivery_ratio_reachable'] >= 0.95"
check "contacts-tamper: corrupted copies reached recipients" \
    "j('contacts-tamper')['auth_failures'] > 0"
check "contacts-tamper: delivery_ratio_reachable >= 0.99" \
    "j('contacts-tamper')['delivery_ratio_reachable'] >= 0.99"

# Replays past the messages' lifetime (contacts: 4 h lifetime in 8 h): the
# copies look new again (lifetimes are relative) and are stored again
# ("resurrected", within the bounds), but never delivered twice.
check "contacts-replay: replays outlived the messages' lifetime" \
    "j('contacts-replay')['resurrected'] > 0"
check "contacts-replay: no duplicate delivery, no re-entry within the lifetime" \
    "j('contacts-replay')['duplicates_delivered'] == 0 and j('contacts-replay')['reentries'] == 0"
check "contacts-replay: delivery as in the honest run" \
    "j('contacts-replay')['delivered'] >= j('contacts-replay-idle')['delivered'] - 1"

check "all: delivery_ratio_reachable >= 0.95" "j('all')['delivery_ratio_reachable'] >= 0.95"
check "all: the figures that must be zero are" \
    "all(j('all')[k] == 0 for k in ['purges_before_delivery', 'reentries', 'name_rebinds',
                                    'duplicates_delivered', 'malformed_frames'])"
check "all: flooder items within the quota" \
    "0 < j('all')['flood_items_max'] <= j('all')['origin_quota']"
check "all: the same run twice gives the same figures" "j('all') == j('all-again')"
