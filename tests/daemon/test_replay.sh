#!/bin/sh
# Replays against real daemons: alice -- bob -- carol, and a rogue peer of
# alice that records every datagram alice sends (adversary record). alice
# sends N messages to carol; once every receipt is back, the rogue replays
# the whole recording to carol (the recipient) and bob (the relay): as it
# was, then with a fresh hop budget and the longest lifetime, then again
# after both restarted (their memory of ids then comes from the store).
# No message may be shown twice, and no purged copy may come back.
. "$(dirname "$0")/lib.sh" "$@"
need_adv

N=10
set -- $($CTL ports 4)
PA=$1 PB=$2 PC=$3 PR=$4
start bob "$PB" "$PA" "$PC"
start alice "$PA" "$PB" "$PR"
start carol "$PC" "$PB"
$CTL wait-user "$(sock alice)" carol 30
$CTL wait-user "$(sock carol)" alice 30

"$ADV" record --listen "$PR" --out "$T/rec" --seconds 120 >"$T/rec.out" 2>&1 &
REC=$!
STARTED="$STARTED $REC"
wait_grep "$T/rec.out" '^listening' 5
: >"$T/acked"
$CTL flood-texts "$(sock alice)" carol "$N" replay "$T/acked" >/dev/null
[ "$(wc -l <"$T/acked")" -eq "$N" ] || fail "alice accepted $(wc -l <"$T/acked") of $N sends"
$CTL check-texts "$(sock carol)" "$T/acked" replay 30 >/dev/null
while read -r mid _; do
    $CTL wait-status "$(sock alice)" "$mid" delivered 30
done <"$T/acked"
sleep 2 # alice passes the receipts on too: record them
kill -TERM "$REC"
wait_pid "$REC" 5
"$ADV" inspect --in "$T/rec" >"$T/inspect"
echo "recorded from alice: $(cat "$T/inspect")"
dms=$(sed -n 's/.* dm=\([0-9]*\).*/\1/p' "$T/inspect")
[ "$dms" -ge "$N" ] || fail "the recording holds $dms private messages, not $N"

stat() { $CTL get "$(sock "$1")" stats "$2" "$3"; }

# replay_round LABEL [--refresh]: replay everything to carol and bob, then
# check that nothing was delivered again or held again.
replay_round() {
    label=$1
    shift
    c_deliv0=$(stat carol engine delivered)
    c_dup0=$(stat carol engine duplicates)
    c_inbox0=$($CTL inbox-count "$(sock carol)")
    b_held0=$(stat bob engine items_held)
    b_items0=$(stat bob store items)
    c_held0=$(stat carol engine items_held)
    "$ADV" replay --in "$T/rec" --to "$PC" --to "$PB" "$@" >"$T/replay.out"
    # carol has seen every replayed message: each one is a duplicate there.
    $CTL wait-stat "$(sock carol)" engine duplicates $((c_dup0 + dms)) 20 >/dev/null
    sleep 2 # let anything the replay set off settle
    c_deliv=$(stat carol engine delivered)
    c_dup=$(stat carol engine duplicates)
    c_inbox=$($CTL inbox-count "$(sock carol)")
    b_held=$(stat bob engine items_held)
    b_items=$(stat bob store items)
    c_held=$(stat carol engine items_held)
    echo "$label: $(cat "$T/replay.out"); carol: duplicates +$((c_dup - c_dup0))," \
        "delivered +$((c_deliv - c_deliv0)), inbox $c_inbox0 -> $c_inbox, holds $c_held0 -> $c_held;" \
        "bob holds $b_held0 -> $b_held (store $b_items0 -> $b_items)"
    [ "$c_deliv" -eq "$c_deliv0" ] || fail "$label: carol delivered $((c_deliv - c_deliv0)) replayed messages"
    [ "$c_inbox" -eq "$c_inbox0" ] || fail "$label: carol's inbox grew from $c_inbox0 to $c_inbox"
    [ "$b_held" -le "$b_held0" ] || fail "$label: bob holds $b_held items, was $b_held0: copies resurrected"
    [ "$b_items" -le "$b_items0" ] || fail "$label: bob's store holds $b_items items, was $b_items0"
    [ "$c_held" -le "$c_held0" ] || fail "$label: carol holds $c_held items, was $c_held0"
    $CTL check-texts "$(sock carol)" "$T/acked" replay 5 >/dev/null
}

replay_round "replay as recorded"
replay_round "replay with fresh lifetime and hops" --refresh
stop bob
stop carol
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PB"
replay_round "replay after bob and carol restarted" --refresh
$CTL check-texts "$(sock carol)" "$T/acked" replay 5
set -- $($CTL statuses "$(sock alice)" "$T/acked")
[ "$1" = "queued=0" ] || fail "alice: $1 $2 after the replays"
stop alice
stop bob
stop carol
echo "PASS"
