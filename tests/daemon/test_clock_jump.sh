#!/bin/sh
# Lifetimes follow the monotonic clock only: jumping the wall clock by a day
# either way changes nothing. Both daemons run under an LD_PRELOAD shim
# (timeshift.c, compiled here) that shifts CLOCK_REALTIME, time() and
# gettimeofday() by the seconds written in a file the test rewrites.
#
# Messages live LIFETIME seconds (config `[node] lifetime`). bob is offline.
#   1. alice sends; the wall clock jumps +1 day, back, and +1 day again;
#      bob returns well within the lifetime: the message is delivered (a
#      wall-clock lifetime would have expired it at the first jump).
#   2. alice sends; the wall clock jumps -1 day; bob returns only after the
#      lifetime: the message is not delivered (a wall-clock lifetime would
#      still have a day to go), while one sent after his return is.
. "$(dirname "$0")/lib.sh" "$@"

LIFETIME=25

CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || fail "no C compiler ($CC) to build the shim"
"$CC" -shared -fPIC -o "$T/timeshift.so" "$HERE/timeshift.c" -ldl ||
    fail "cannot build the shim"
echo 0 >"$T/shift"
printf '[node]\nlifetime = %ds\n' "$LIFETIME" >"$T/node.conf"
# Sanitizer builds want their runtime first in the library list.
cat >"$T/wrap.sh" <<EOW
export FE_TIMESHIFT_FILE="$T/shift" LD_PRELOAD="$T/timeshift.so"
export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0"
exec "\$@" --config "$T/node.conf"
EOW
WRAP="sh $T/wrap.sh"

jump() {
    echo "$1" >"$T/shift"
}

set -- $($CTL ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
stop bob

# The shim is in effect: alice's log stamps (wall time) move by a day.
jump 86400
$CTL get "$(sock alice)" id name >/dev/null
tomorrow=$(date -u -d "@$(($(date +%s) + 86400))" +%Y-%m-%d 2>/dev/null || echo "")
sleep 0.5

# 1. Forward and back while bob is away; delivered.
jump 0
t0=$(date +%s)
m1=$($CTL send "$(sock alice)" bob "before-lifetime")
jump 86400
sleep 1
jump 0
sleep 1
jump 86400
sleep 1
start bob "$PB" "$PA"
$CTL wait-status "$(sock alice)" "$m1" delivered $((LIFETIME - 3 - ($(date +%s) - t0))) ||
    fail "a message within its lifetime was not delivered after wall-clock jumps"
$CTL inbox-has "$(sock bob)" "$m1" "before-lifetime" >/dev/null
echo "1: delivered $(($(date +%s) - t0)) s after sending, with the wall clock a day ahead"
stop bob

# 2. Backward; bob returns after the lifetime: not delivered, while a
# message sent after his return is (so the link did work).
jump 0
t0=$(date +%s)
m2=$($CTL send "$(sock alice)" bob "after-lifetime")
jump -86400
sleep $((LIFETIME + 3))
start bob "$PB" "$PA"
m3=$($CTL send "$(sock alice)" bob "control")
$CTL wait-status "$(sock alice)" "$m3" delivered 20 || fail "bob is back but unreachable"
sleep 2
if $CTL inbox-has "$(sock bob)" "$m2" "after-lifetime" >/dev/null 2>&1; then
    fail "a message was delivered $(($(date +%s) - t0)) s after sending, past its ${LIFETIME} s lifetime"
fi
echo "2: not delivered $(($(date +%s) - t0)) s after sending (lifetime ${LIFETIME} s, wall clock" \
    "a day behind), while a later message was"

# Proof that the shim worked: log stamps a day off (the log is wall time).
if [ -n "$tomorrow" ]; then
    grep -q "^$tomorrow" "$T/alice.log" || fail "no log line stamped $tomorrow: the shim had no effect"
    echo "alice's log has lines stamped $tomorrow: the wall clock did jump"
fi
stop alice
stop bob
echo "PASS"
