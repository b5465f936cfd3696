#!/bin/sh
# Relay through a middle node: alice peers only with bob, carol only with
# bob, so everything between alice and carol passes through bob. Bob relays
# sealed messages it cannot read. (test_cli_relay_restart.sh: bob goes away.)
. "$(dirname "$0")/cli_lib.sh" "$@"

set -- $(ports 3)
PA=$1 PB=$2 PC=$3
start alice "$PA" "$PB"
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PB"

step "alice and carol learn each other's keys from announces relayed by bob"
wait_for 30 "alice never heard of carol" knows alice carol
wait_for 30 "carol never heard of alice" knows carol alice

step "alice -> carol through bob, and the receipt back"
id=$(f alice --json send carol meet at the bridge | json_message_id)
[ -n "$id" ] || fail "send gave no message id"
wait_for 30 "carol never got the message" inbox_has carol "alice: meet at the bridge"
wait_for 30 "alice never saw carol's receipt" state_is alice "$id" delivered

step "carol -> alice, waiting for the receipt"
out=$(f carol send alice on my way --wait 30) || fail "carol's send --wait failed: $out"
echo "$out" | grep -q "^delivered after" || fail "send --wait printed: $out"
inbox_has alice "carol: on my way" || fail "alice's inbox lacks carol's reply"

step "bob carried both but read neither"
[ "$(f bob inbox --all)" = "the inbox is empty" ] || fail "bob's inbox: $(f bob inbox --all)"
f bob stats | grep -q "relayed: [1-9]" || fail "bob's stats show nothing relayed"

stop alice
stop bob
stop carol
echo "PASS"
