#!/bin/sh
# The ferry CLI between two daemons on loopback: send, inbox (unread once,
# --all, --follow), status, send --wait, --anonymous, --json, and the
# documented exit codes (1 daemon error, 2 usage, 3 no daemon).
. "$(dirname "$0")/cli_lib.sh" "$@"

set -- $(ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
wait_for 20 "alice never heard bob's announce" knows alice bob
wait_for 20 "bob never heard alice's announce" knows bob alice

step "send, and read once"
out=$(f alice send bob water at the north gate)
echo "$out"
echo "$out" | grep -q "^queued for bob ([0-9a-f]\{8\}): message [0-9a-f]\{16\}$" ||
    fail "send printed: $out"
id=$(echo "$out" | sed 's/.*message //')
# Delivered means the receipt came back: the message is in bob's inbox.
wait_for 20 "alice never saw the receipt" state_is alice "$id" delivered
out=$(f bob inbox)
echo "$out"
echo "$out" | grep -q '^\[[^]]*\] alice: water at the north gate$' ||
    fail "inbox line is not '[age] alice: text': $out"
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "inbox shows more than the one message"
[ "$(f bob inbox)" = "no new messages" ] || fail "a second inbox still shows it"
inbox_has bob "alice: water at the north gate" || fail "inbox --all lost the read message"

step "status and --json"
line=$(f alice --json send bob by json)
[ "$(echo "$line" | wc -l)" -eq 1 ] || fail "--json printed more than one line"
id=$(echo "$line" | json_message_id)
echo "$id" | grep -Eq '^[0-9a-f]{16}$' || fail "no message id in: $line"
echo "$line" | grep -q '"to_name":"bob"' || fail "--json result lacks to_name: $line"
wait_for 20 "status never became delivered" state_is alice "$id" delivered
f alice status "$id" | grep -q "^$id to bob: delivered after [0-9]* s" ||
    fail "status printed: $(f alice status "$id")"

step "send --wait"
out=$(f alice send bob --wait 20 -- --waited for)
echo "$out"
echo "$out" | grep -q "^delivered after [0-9]* s$" || fail "send --wait printed: $out"
inbox_has bob "alice: --waited for" || fail "the --wait message is not in bob's inbox"

step "anonymous"
f alice send --anonymous bob who sent this >/dev/null
wait_for 20 "anonymous message not in bob's inbox" inbox_has bob "(anonymous): who sent this"
f bob --json inbox --all | grep -o '{[^{}]*"text":"who sent this"[^{}]*}' |
    grep -q '"type":"anonymous","from":"","from_name":""' || fail "anonymous message shows a sender"

step "inbox --follow"
# Run ferry itself in the background (not the f function, which would be a
# subshell), so $! is its pid and the signal reaches it.
"$FERRY" --socket "$(sock bob)" inbox --follow >"$T/follow.out" 2>&1 &
follow=$!
STARTED="$STARTED $follow"
wait_for 10 "inbox --follow did not start" grep -q "waiting for messages" "$T/follow.out"
f alice send bob live one >/dev/null
wait_for 20 "inbox --follow did not show the new message" grep -q "alice: live one" "$T/follow.out"
kill -INT "$follow"
wait_exit "$follow" 5
[ "$EXIT_STATUS" -eq 0 ] || fail "inbox --follow exited $EXIT_STATUS on Ctrl-C"
[ "$(grep -c "alice: live one" "$T/follow.out")" -eq 1 ] || fail "--follow printed it twice"

step "exit codes"
status=0
f alice send nobody hello 2>"$T/err" || status=$?
[ "$status" -eq 1 ] || fail "unknown user: exit $status, not 1"
grep -q "^ferry: .*nobody" "$T/err" || fail "unknown user message: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "more than one line for an unknown user"

status=0
f alice send bob 2>"$T/err" || status=$?
[ "$status" -eq 2 ] || fail "missing text: exit $status, not 2"
status=0
f alice frobnicate 2>/dev/null || status=$?
[ "$status" -eq 2 ] || fail "unknown command: exit $status, not 2"

status=0
"$FERRY" --socket "$T/nothing.sock" id 2>"$T/err" || status=$?
[ "$status" -eq 3 ] || fail "no daemon: exit $status, not 3"
want="ferry: cannot reach ferryd at $T/nothing.sock: No such file or directory"
want="$want (is ferryd running? start it with: ferryd)"
grep -qxF "$want" "$T/err" ||
    fail "no daemon message: $(cat "$T/err")"
status=0
FERRY_SOCKET="$T/nothing.sock" "$FERRY" users 2>"$T/err" || status=$?
[ "$status" -eq 3 ] && grep -q "$T/nothing.sock" "$T/err" || fail "FERRY_SOCKET not used"

f alice send --help | grep -q "^usage: ferry .*send USER TEXT" || fail "send --help"

stop alice
stop bob
echo "PASS"
