#!/bin/sh
# (a) Two daemons on loopback: a message sent over alice's control socket
# reaches bob's inbox, names resolve both ways, and alice sees the receipt.
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
$CTL wait-user "$(sock bob)" alice 20

text="water at the north gate"
id=$($CTL send "$(sock alice)" bob "$text")
echo "sent $id"
echo "$id" >"$T/want"
$CTL wait-inbox "$(sock bob)" "$T/want" 20
from=$($CTL inbox-has "$(sock bob)" "$id" "$text")
[ "$from" = alice ] || fail "the message is from '$from', not alice"
$CTL wait-status "$(sock alice)" "$id" delivered 20

# An address prefix names a user as well as the name does.
addr=$($CTL get "$(sock bob)" id address)
id2=$($CTL send "$(sock alice)" "$(echo "$addr" | cut -c1-6)" "by address")
echo "$id2" >"$T/want"
$CTL wait-inbox "$(sock bob)" "$T/want" 20

stop alice
stop bob
echo "PASS"
