#!/bin/sh
# (d) Crash safety. alice knows bob's key from an earlier run; bob is then
# offline. alice is killed with SIGKILL while 200 send requests are still
# arriving. After a restart of alice and the return of bob, every message
# whose send got an ok reply is delivered exactly once, and no message is
# delivered twice.
. "$(dirname "$0")/lib.sh" "$@"

N=200
set -- $($CTL ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
stop bob

: >"$T/acked"
$CTL flood "$(sock alice)" bob "$N" "$T/acked" >"$T/flood.out" &
FLOOD=$!
STARTED="$STARTED $FLOOD"
# Kill alice once about half of the requests were acknowledged.
i=0
while [ "$(wc -l <"$T/acked")" -lt $((N / 2)) ]; do
    i=$((i + 1))
    [ "$i" -le 300 ] || fail "alice acknowledged only $(wc -l <"$T/acked") sends in 30 s"
    kill -0 "$FLOOD" 2>/dev/null || fail "the sender stopped early: $(cat "$T/flood.out")"
    sleep 0.1
done
crash alice
wait "$FLOOD" || true
acked=$(wc -l <"$T/acked")
echo "alice acknowledged $acked of $N sends before SIGKILL"
[ "$acked" -lt "$N" ] || fail "alice was killed too late to test anything"

start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL count-events "$(sock bob)" 25 "$T/events" &
EVENTS=$!
STARTED="$STARTED $EVENTS"
$CTL check-once "$(sock bob)" "$T/acked" "$N" 60
# Let duplicates, if any, show up before the final count.
sleep 3
$CTL check-once "$(sock bob)" "$T/acked" "$N" 5
kill "$EVENTS" 2>/dev/null || true
wait "$EVENTS" 2>/dev/null || true
dups=$(sort "$T/events" | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups messages were announced twice to bob's subscriber"
stop alice
stop bob
echo "PASS"
