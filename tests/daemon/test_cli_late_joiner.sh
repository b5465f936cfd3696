#!/bin/sh
# A late joiner: carol is down when alice writes to her. The message waits in
# the mesh (bob, the relay between them, holds a sealed copy); when carol
# starts again she receives it, the receipt travels back, alice's
# `ferry status` says delivered, and a `send --wait` started while carol was
# down exits 0.
. "$(dirname "$0")/cli_lib.sh" "$@"

set -- $(ports 3)
PA=$1 PB=$2 PC=$3
start alice "$PA" "$PB"
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PB"
wait_for 30 "alice never heard of carol" knows alice carol
wait_for 30 "carol never heard of alice" knows carol alice

step "carol goes down"
stop carol
wait_for 15 "alice never saw carol go offline" sees_offline alice carol

step "alice writes to carol while she is down"
"$FERRY" --socket "$(sock alice)" --json send carol --wait 90 the road is open \
    >"$T/wait.out" 2>"$T/wait.err" &
waiter=$!
STARTED="$STARTED $waiter"
wait_for 10 "send printed no message id" grep -q '"message_id"' "$T/wait.out"
id=$(json_message_id <"$T/wait.out")
echo "message $id"
f alice status "$id" | grep -q "^$id to carol: queued" ||
    fail "status while carol is down: $(f alice status "$id")"

status=0
f alice send carol --wait 2 a short wait >/dev/null 2>"$T/err" || status=$?
[ "$status" -eq 4 ] || fail "send --wait 2 to a node that is down: exit $status, not 4"

step "bob holds the message while carol is away"
sleep 2
kill -0 "$waiter" || fail "send --wait ended while carol was down: $(cat "$T/wait.err")"
state_is alice "$id" queued || fail "the message is no longer queued"

step "carol comes back"
start carol "$PC" "$PB"
wait_for 60 "carol never received the waiting message" inbox_has carol "alice: the road is open"
wait_exit "$waiter" 60
[ "$EXIT_STATUS" -eq 0 ] || fail "send --wait exited $EXIT_STATUS: $(cat "$T/wait.err")"
[ "$(wc -l <"$T/wait.out")" -eq 2 ] || fail "send --wait --json printed: $(cat "$T/wait.out")"
tail -n 1 "$T/wait.out" | grep -q '"state":"delivered"' ||
    fail "the last line is not the delivered status"
f alice status "$id" | grep -q "^$id to carol: delivered after [0-9]* s" ||
    fail "status: $(f alice status "$id")"
state_is alice "$id" delivered

# The short-wait message is delivered too; nothing was lost.
wait_for 30 "the second message never arrived" inbox_has carol "alice: a short wait"

stop alice
stop bob
stop carol
echo "PASS"
