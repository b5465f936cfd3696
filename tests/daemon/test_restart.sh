#!/bin/sh
# (e) SIGTERM exits 0, and a restart keeps the identity and the inbox. The
# second start detaches (no --foreground): the command returns once the
# daemon is ready, and the daemon logs to its data directory.
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
addr=$($CTL get "$(sock bob)" id address)
id=$($CTL send "$(sock alice)" bob "before the restart")
echo "$id" >"$T/want"
$CTL wait-inbox "$(sock bob)" "$T/want" 20
stop bob

"$FERRYD" --data-dir "$T/bob" --name bob --udp-port "$PB" --peer "127.0.0.1:$PA" \
    --no-multicast 2>>"$T/bob-start.log" || fail "detached start failed"
PID_bob=$($CTL pid "$(sock bob)")
STARTED="$STARTED $PID_bob"
[ -s "$T/bob/ferryd.log" ] || fail "the detached daemon does not log to its data directory"
[ "$($CTL get "$(sock bob)" id address)" = "$addr" ] || fail "bob's address changed"
$CTL inbox-has "$(sock bob)" "$id" "before the restart" >/dev/null
# A second daemon on the same data directory is refused, not started.
if "$FERRYD" --foreground --data-dir "$T/bob" --udp-port "$PB" --no-multicast \
    --peer "127.0.0.1:$PA" 2>"$T/second.log"; then
    fail "a second daemon started on the same data directory"
fi
grep -q "already using data directory" "$T/second.log" ||
    fail "unclear refusal: $(cat "$T/second.log")"
# ... and so is one on another directory but the same control socket.
if "$FERRYD" --foreground --data-dir "$T/other" --socket "$(sock bob)" --udp-port "$PB" \
    --no-multicast --peer "127.0.0.1:$PA" 2>"$T/third.log"; then
    fail "a second daemon started on the same control socket"
fi
grep -q "already listening" "$T/third.log" || fail "unclear refusal: $(cat "$T/third.log")"

kill -TERM "$PID_bob"
i=0
while kill -0 "$PID_bob" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 150 ] || fail "detached bob did not exit on SIGTERM"
    sleep 0.1
done
grep -q "stopped" "$T/bob/ferryd.log" || fail "detached bob did not stop cleanly"
if grep -q "Sanitizer" "$T/bob/ferryd.log"; then
    fail "detached bob: sanitizer report in its log"
fi
[ ! -e "$(sock bob)" ] || fail "the control socket was left behind"
stop alice
echo "PASS"
