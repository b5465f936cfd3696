#!/bin/sh
# A flooder that ignores its own quota, against a real relay: alice -- bob
# -- carol, and a rogue (adversary flood) that builds and signs FLOOD valid
# private messages to carol from one origin with the core's encoders and
# sends them straight to bob's port, as fast as bob's socket takes them. It
# announces itself first, so carol can open what reaches her: the hardest
# case for bob. carol is offline. alice, the honest sender, sends 20
# messages to carol, first alone (the baseline), then during the flood.
# All honest messages must arrive both times. bob does not report counts
# per origin, so the bound on the flooder is checked from what bob reports
# and what carol gets: bob's items grow by at most one origin quota plus
# alice's 20 and the flooder's announce, and carol receives at most one
# quota of the flooder's messages. bob's memory (RSS) is printed and must
# stay within a generous bound.
. "$(dirname "$0")/lib.sh" "$@"
need_adv

HONEST=20
FLOOD=${FLOOD_COUNT:-5000}
ORIGIN_QUOTA=256 # FE_ORIGIN_QUOTA (core/limits.h)
RSS_GROWTH_MAX_KB=65536

set -- $($CTL ports 3)
PA=$1 PB=$2 PC=$3
start bob "$PB" "$PA" "$PC"
start alice "$PA" "$PB"
start carol "$PC" "$PB"
$CTL wait-user "$(sock alice)" carol 30
carol_pk=$($CTL get "$(sock carol)" id public_key)
stop carol

# round_end PREFIX: carol returns; GOT is how many of the honest messages
# "PREFIX-<i>" arrived within 60 s (exactly once each).
round_end() {
    start carol "$PC" "$PB"
    set -- $($CTL wait-texts "$(sock carol)" "$1-" "$HONEST" 60)
    [ "$2" -eq "$1" ] || fail "carol got an honest message twice ($2 copies of $1)"
    GOT=$1
}
stat() { $CTL get "$(sock bob)" stats engine "$1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID_bob/status"; }

: >"$T/acked-base"
$CTL flood-texts "$(sock alice)" carol "$HONEST" honest-base "$T/acked-base" >/dev/null
round_end honest-base
base=$GOT
stop carol

held0=$(stat items_held)
rej0=$(stat quota_rejects)
in0=$(stat frames_in)
rss0=$(rss_kb)
"$ADV" flood --to "$PB" --to-pk "$carol_pk" --count "$FLOOD" --announce mallory \
    --prefix flood --seconds 60 >"$T/flood.out" 2>&1 &
FLOODER=$!
STARTED="$STARTED $FLOODER"
: >"$T/acked-flood"
$CTL flood-texts "$(sock alice)" carol "$HONEST" honest-flood "$T/acked-flood" >/dev/null
wait_pid "$FLOODER" 70
[ "$WAITED" -eq 0 ] || fail "the flooder: $(cat "$T/flood.out")"
$CTL get "$(sock bob)" id name >/dev/null # bob still answers
sleep 3                                   # let bob take in what is queued
held1=$(stat items_held)
rej1=$(stat quota_rejects)
in1=$(stat frames_in)
rss1=$(rss_kb)
flood_acked=$(wc -l <"$T/acked-flood")
round_end honest-flood
with=$GOT
# What bob held of the flooder is now offered to carol; give it time.
set -- $($CTL wait-texts "$(sock carol)" flood- "$ORIGIN_QUOTA" 20)
flood_got=$1 flood_copies=$2

echo "flooder: $(cat "$T/flood.out")"
echo "honest delivery: baseline $base/$HONEST, under flood $with/$HONEST" \
    "($flood_acked accepted by alice)"
echo "bob during the flood: $((in1 - in0)) frames in, quota_rejects +$((rej1 - rej0))," \
    "items held $held0 -> $held1, RSS $rss0 -> $rss1 kB"
echo "flooder's messages delivered to carol: $flood_got (origin quota $ORIGIN_QUOTA)"
[ "$flood_acked" -eq "$HONEST" ] || fail "alice accepted $flood_acked of $HONEST sends"
[ "$base" -eq "$HONEST" ] || fail "baseline: only $base of $HONEST honest messages arrived"
[ "$with" -eq "$HONEST" ] || fail "under flood: only $with of $HONEST honest messages arrived"
[ "$flood_copies" -eq "$flood_got" ] || fail "carol got a flood message twice"
[ $((held1 - held0)) -le $((ORIGIN_QUOTA + HONEST + 1)) ] ||
    fail "bob's items grew by $((held1 - held0)): more than one quota for the flooder"
[ "$flood_got" -le "$ORIGIN_QUOTA" ] ||
    fail "carol got $flood_got of the flooder's messages, more than one quota"
[ "$flood_got" -ge 1 ] || fail "none of the flooder's messages reached carol: was the flood valid?"
if [ "$FLOOD" -gt $((2 * ORIGIN_QUOTA)) ]; then
    [ $((rej1 - rej0)) -gt 0 ] || fail "bob refused nothing of $FLOOD flood messages"
fi
[ $((rss1 - rss0)) -le "$RSS_GROWTH_MAX_KB" ] ||
    fail "bob's RSS grew by $((rss1 - rss0)) kB during the flood"
stop alice
stop bob
stop carol
echo "PASS"
