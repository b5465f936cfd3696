#!/bin/sh
# Forged receipts against real daemons: alice -- bob -- carol, and a rogue
# peer attached to bob (adversary forge-receipt). carol is offline. alice
# sends N messages to carol; bob relays them to the rogue too, which
# records their ids and answers each with K receipts under made-up secrets
# (to bob and to alice) and a summary claiming to hold its receipt. No copy
# may be purged, alice must not see "delivered", and the forgeries must not
# be passed on. When carol returns she gets each message exactly once and
# her real receipts reach alice.
. "$(dirname "$0")/lib.sh" "$@"
need_adv

N=5
K=20
set -- $($CTL ports 4)
PA=$1 PB=$2 PC=$3 PR=$4
start bob "$PB" "$PA" "$PC" "$PR"
start alice "$PA" "$PB"
start carol "$PC" "$PB"
$CTL wait-user "$(sock alice)" carol 30
$CTL wait-user "$(sock carol)" alice 30
stop carol

"$ADV" forge-receipt --listen "$PR" --to "$PB" --to "$PA" --want "$N" --per-id "$K" \
    --ids-out "$T/forged-ids" --seconds 60 >"$T/forge.out" 2>"$T/forge.err" &
FORGE=$!
STARTED="$STARTED $FORGE"
wait_grep "$T/forge.out" '^listening' 5

stat() { $CTL get "$(sock "$1")" stats engine "$2"; }
b_unmatched0=$(stat bob receipts_unmatched)
a_unmatched0=$(stat alice receipts_unmatched)
b_purged0=$(stat bob purged)
a_valid0=$(stat alice receipts_valid)
b_held0=$(stat bob items_held)

: >"$T/acked"
$CTL flood-texts "$(sock alice)" carol "$N" forged-receipt "$T/acked" >/dev/null
[ "$(wc -l <"$T/acked")" -eq "$N" ] || fail "alice accepted $(wc -l <"$T/acked") of $N sends"
wait_pid "$FORGE" 70
[ "$WAITED" -eq 0 ] || fail "the rogue: $(cat "$T/forge.err")"
cat "$T/forge.out"
forged=$(sed -n 's/.*receipts=\([0-9]*\).*/\1/p' "$T/forge.out")
[ "$forged" -eq $((N * K)) ] || fail "the rogue sent $forged receipts, not $((N * K))"
# The rogue really saw the ids it attacked: exactly alice's messages.
cut -d' ' -f1 "$T/acked" | sort >"$T/acked-ids"
sort "$T/forged-ids" | cmp -s - "$T/acked-ids" ||
    fail "the rogue attacked other ids than alice's: $(cat "$T/forged-ids")"

# Every forged receipt reached both daemons and was counted as unmatched.
$CTL wait-stat "$(sock bob)" engine receipts_unmatched $((b_unmatched0 + forged)) 20 >/dev/null
$CTL wait-stat "$(sock alice)" engine receipts_unmatched $((a_unmatched0 + forged)) 20 >/dev/null
sleep 2 # time for a purge or a "delivered" to show up, if there were one
b_unmatched=$(stat bob receipts_unmatched)
a_unmatched=$(stat alice receipts_unmatched)
b_purged=$(stat bob purged)
b_held=$(stat bob items_held)
a_valid=$(stat alice receipts_valid)
set -- $($CTL statuses "$(sock alice)" "$T/acked")
echo "forged: $forged receipts; unmatched at bob +$((b_unmatched - b_unmatched0))," \
    "at alice +$((a_unmatched - a_unmatched0)); bob purged +$((b_purged - b_purged0)), holds" \
    "$b_held items (was $b_held0); alice: $1 $2"
# Exactly the rogue's: had bob passed them on, alice would count each twice.
[ "$a_unmatched" -eq $((a_unmatched0 + forged)) ] ||
    fail "alice counted $((a_unmatched - a_unmatched0)) unmatched receipts, not $forged: bob forwarded forgeries"
[ "$b_unmatched" -eq $((b_unmatched0 + forged)) ] ||
    fail "bob counted $((b_unmatched - b_unmatched0)) unmatched receipts, not $forged"
[ "$b_purged" -eq "$b_purged0" ] || fail "bob purged $((b_purged - b_purged0)) copies on forged receipts"
[ "$a_valid" -eq "$a_valid0" ] || fail "alice took $((a_valid - a_valid0)) forged receipts as valid"
[ "$b_held" -ge $((b_held0 + N)) ] || fail "bob holds $b_held items, fewer than before plus $N"
[ "$1" = "queued=$N" ] || fail "alice sees $1 $2 after the forgeries"

# carol returns: each message once, and the real receipts come back.
start carol "$PC" "$PB"
$CTL check-texts "$(sock carol)" "$T/acked" forged-receipt 60
while read -r mid _; do
    $CTL wait-status "$(sock alice)" "$mid" delivered 30
done <"$T/acked"
$CTL wait-stat "$(sock bob)" engine purged $((b_purged0 + N)) 20 >/dev/null
sleep 2
$CTL check-texts "$(sock carol)" "$T/acked" forged-receipt 5 >/dev/null
echo "after carol's return: $($CTL statuses "$(sock alice)" "$T/acked") at alice," \
    "bob purged +$(($(stat bob purged) - b_purged0))"
stop alice
stop bob
stop carol
echo "PASS"
