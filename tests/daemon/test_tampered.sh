#!/bin/sh
# Tampered frames against a real daemon. A rogue peer of alice records her
# private message to bob while bob is offline (adversary record); alice
# then goes offline too, bob comes back, and the rogue sends bob damaged
# copies (adversary tamper): flipped ciphertext, tag and id bits, a
# shortened text, a truncated header, wrong version and type, fragment
# headers declaring impossible sizes, a truncated fragment, a fragment
# with a flipped bit, a fragment of a fragment. bob must count each one,
# as malformed or as a failed open, exactly as many as were sent, and
# deliver none. Last, the rogue sends the genuine frame cut into fragments:
# bob must deliver it once, the damaged copies with the same id
# notwithstanding, and keep serving; alice's own copy, when she returns,
# is not delivered again, and her message is "delivered".
. "$(dirname "$0")/lib.sh" "$@"
need_adv

set -- $($CTL ports 3)
PA=$1 PB=$2 PR=$3
start alice "$PA" "$PB" "$PR"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
$CTL wait-user "$(sock bob)" alice 20
bob_addr=$($CTL get "$(sock bob)" id address)
stop bob

"$ADV" record --listen "$PR" --out "$T/rec" --seconds 60 >"$T/rec.out" 2>&1 &
REC=$!
STARTED="$STARTED $REC"
wait_grep "$T/rec.out" '^listening' 5
TEXT="the genuine text"
mid=$($CTL send "$(sock alice)" bob "$TEXT")
i=0
until "$ADV" inspect --in "$T/rec" | grep -qv ' dm=0 '; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "the rogue recorded no private message within 10 s"
    sleep 0.1
done
kill -TERM "$REC"
wait_pid "$REC" 5
stop alice

start bob "$PB" "$PA"
stat() { $CTL get "$(sock bob)" stats engine "$1"; }
mal0=$(stat malformed)
auth0=$(stat auth_failures)
deliv0=$(stat delivered)
[ "$($CTL inbox-count "$(sock bob)")" -eq 0 ] || fail "bob's inbox is not empty before the test"

"$ADV" tamper --in "$T/rec" --to "$PB" --dst "$bob_addr" --no-control >"$T/tamper.out"
exp_mal=$(sed -n 's/.*malformed=\([0-9]*\).*/\1/p' "$T/tamper.out")
exp_auth=$(sed -n 's/.*auth=\([0-9]*\).*/\1/p' "$T/tamper.out")
$CTL wait-stat "$(sock bob)" engine malformed $((mal0 + exp_mal)) 10 >/dev/null
$CTL wait-stat "$(sock bob)" engine auth_failures $((auth0 + exp_auth)) 10 >/dev/null
sleep 1
mal=$(stat malformed)
auth=$(stat auth_failures)
echo "tampered frames sent: $exp_mal undecodable, $exp_auth that cannot open;" \
    "bob counted malformed +$((mal - mal0)), auth_failures +$((auth - auth0))," \
    "reassembly slots in use $(stat reasm_in_use)"
[ "$mal" -eq $((mal0 + exp_mal)) ] || fail "bob counted $((mal - mal0)) malformed, not $exp_mal"
[ "$auth" -eq $((auth0 + exp_auth)) ] || fail "bob counted $((auth - auth0)) failed opens, not $exp_auth"
[ "$(stat delivered)" -eq "$deliv0" ] || fail "bob delivered a tampered frame"
[ "$($CTL inbox-count "$(sock bob)")" -eq 0 ] || fail "a tampered frame reached bob's inbox"

# The genuine frame, fragmented by the rogue, after all that damage.
"$ADV" tamper --in "$T/rec" --to "$PB" --dst "$bob_addr" >"$T/tamper2.out"
echo "$mid" >"$T/want"
$CTL wait-inbox "$(sock bob)" "$T/want" 10
from=$($CTL inbox-has "$(sock bob)" "$mid" "$TEXT")
[ "$from" = alice ] || fail "the genuine message shows as from '$from'"
$CTL get "$(sock bob)" id name >/dev/null # still serving

start alice "$PA" "$PB" "$PR"
$CTL wait-status "$(sock alice)" "$mid" delivered 30
id2=$($CTL send "$(sock alice)" bob "after the tampering")
echo "$id2" >"$T/want2"
$CTL wait-inbox "$(sock bob)" "$T/want2" 20
sleep 1
n=$($CTL inbox-count "$(sock bob)")
[ "$n" -eq 2 ] || fail "bob's inbox holds $n messages, not the 2 genuine ones"
echo "genuine message delivered once ($(stat delivered) in all), receipt back at alice;" \
    "bob serves on"
stop alice
stop bob
echo "PASS"
