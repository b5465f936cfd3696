#!/bin/sh
# A node that stops and starts again soon after (an update, a reboot, a flat
# battery swapped) must show as online again: its going-offline notice made
# it offline, and the fresh announce it sends at start must make it online,
# even within a minute of the notice.
. "$(dirname "$0")/cli_lib.sh" "$@"

set -- $(ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
wait_for 20 "alice never saw bob online" sees_online alice bob

step "bob stops: offline"
stop bob
wait_for 5 "alice does not show bob offline" sees_offline alice bob

step "bob starts again a few seconds later: online again"
start bob "$PB" "$PA"
wait_for 15 "alice still shows bob offline after he came back" sees_online alice bob
f alice online | grep -q "^bob " || fail "online does not list bob"

stop alice
stop bob
echo "PASS"
