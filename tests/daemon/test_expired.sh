#!/bin/sh
# A message whose lifetime runs out before any receipt comes back is
# reported as "expired", not "queued" for ever: alice sends with a 3 s
# lifetime while bob is down; status says queued, then expired.
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 2)
PA=$1 PB=$2
printf '[node]\nlifetime = 3s\n' >"$T/short.ini"
FERRYD_ARGS="--config $T/short.ini" start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
stop bob

id=$($CTL send "$(sock alice)" bob "too late")
$CTL wait-status "$(sock alice)" "$id" queued 5
$CTL wait-status "$(sock alice)" "$id" expired 30
echo "PASS"
