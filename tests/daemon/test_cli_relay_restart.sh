#!/bin/sh
# The relay goes away and comes back: alice peers only with bob, carol only
# with bob. With bob stopped alice has no path to carol, so `send --wait`
# times out (exit 4) and the message stays queued; when bob restarts, the
# queued message goes through and the receipt comes back.
. "$(dirname "$0")/cli_lib.sh" "$@"

set -- $(ports 3)
PA=$1 PB=$2 PC=$3
start alice "$PA" "$PB"
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PB"
wait_for 30 "alice never heard of carol" knows alice carol
wait_for 30 "carol never heard of alice" knows carol alice

step "bob stops: no path from alice to carol"
stop bob
status=0
f alice send carol are you there --wait 3 >"$T/out" 2>"$T/err" || status=$?
[ "$status" -eq 4 ] || fail "send --wait with no path: exit $status, not 4 ($(cat "$T/err"))"
grep -q "no delivery receipt within 3 s" "$T/err" || fail "timeout message: $(cat "$T/err")"
id=$(sed -n 's/.*message \([0-9a-f]\{16\}\).*/\1/p' "$T/out")
f alice status "$id" | grep -q ": queued" || fail "status after timeout: $(f alice status "$id")"
inbox_has carol "alice: are you there" && fail "carol got a message with no path to her"

step "bob restarts: the queued message goes through"
start bob "$PB" "$PA" "$PC"
wait_for 60 "carol never got the queued message" inbox_has carol "alice: are you there"
wait_for 30 "alice never saw the receipt" state_is alice "$id" delivered

stop alice
stop bob
stop carol
echo "PASS"
