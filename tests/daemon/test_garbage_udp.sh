#!/bin/sh
# (c) 1,000 garbage datagrams on the daemon's port are counted as malformed
# by the engine, and a real message still gets through afterwards.
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
$CTL wait-user "$(sock bob)" alice 20

before=$($CTL get "$(sock bob)" stats engine malformed)
n=$($CTL garbage "$PB" 1000)
[ "$n" -eq 1000 ] || fail "sent $n garbage datagrams"
$CTL wait-stat "$(sock bob)" engine malformed $((before + 1000)) 20 >/dev/null

id=$($CTL send "$(sock alice)" bob "after the storm")
echo "$id" >"$T/want"
$CTL wait-inbox "$(sock bob)" "$T/want" 20
$CTL wait-status "$(sock alice)" "$id" delivered 20
stop alice
stop bob
echo "PASS"
