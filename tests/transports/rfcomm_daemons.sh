#!/bin/sh
# Two real ferryd talking over Bluetooth RFCOMM, through the test shim that
# maps RFCOMM sockets onto Unix sockets in one directory (btshim.c): alice
# (adapter 00:00:00:00:00:01) dials bob (00:00:00:00:00:02, channel 7).
#   1. alice hears bob's announce and her message to bob is confirmed;
#   2. bob restarts (the link drops): alice redials, and a second message
#      gets through.
#
# Usage: rfcomm_daemons.sh BIN_DIR SHIM_SO   (the build's bin directory with
# ferryd and ferry, and libferry_btshim.so). Exits 77 (skipped) while ferryd
# has no RFCOMM transport (detected with "ferryd --help | grep rfcomm").
#
# Only processes started here are signalled, by pid; the EXIT trap stops
# them and removes the temporary directory.
set -eu

BIN=${1:?usage: $0 BIN_DIR SHIM_SO}
SHIM=${2:-}
FERRYD=$BIN/ferryd
FERRY=$BIN/ferry

if [ ! -x "$FERRYD" ] || [ ! -x "$FERRY" ]; then
    echo "skip: needs ferryd and ferry in $BIN" >&2
    exit 77
fi
if [ -z "$SHIM" ] || [ ! -f "$SHIM" ]; then
    echo "skip: no Bluetooth test shim (libferry_btshim.so)" >&2
    exit 77
fi
if ! "$FERRYD" --help 2>&1 | grep -q rfcomm; then
    echo "skip: this ferryd has no rfcomm transport yet" >&2
    exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bt.XXXXXX")
mkdir "$T/air"
PID_ALICE=""
PID_BOB=""
cleanup() {
    status=$?
    for pid in $PID_ALICE $PID_BOB; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $PID_ALICE $PID_BOB; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$T"/*.log; do
            [ -f "$log" ] || continue
            echo "--- $log (last 40 lines)" >&2
            tail -n 40 "$log" >&2
        done
    fi
    rm -rf "$T"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Bluetooth only: no UDP, so the daemons cannot meet any other way.
cat >"$T/alice.conf" <<CONF
[node]
name = alice
data_dir = $T/alice
log_level = debug

[udp]
enabled = false

[rfcomm]
adapter = hci0
channel = 7
inquiry = false
peer = 00:00:00:00:00:02 7
backoff_max = 2s
CONF
cat >"$T/bob.conf" <<CONF
[node]
name = bob
data_dir = $T/bob
log_level = debug

[udp]
enabled = false

[rfcomm]
adapter = hci0
channel = 7
inquiry = false
CONF

# start NAME ADAPTER_ADDRESS: prints the pid. The daemon's stdout must not
# be the $(...) pipe, or the substitution would wait for the daemon to exit.
start() {
    env LD_PRELOAD="$SHIM" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        FERRY_BTSHIM_DIR="$T/air" FERRY_BTSHIM_ADDR="$2" \
        "$FERRYD" --foreground --config "$T/$1.conf" >/dev/null 2>>"$T/$1.log" &
    echo $!
}

sock() {
    echo "$T/$1/ferryd.sock"
}

# wait_for TRIES COMMAND...: retry every half second.
wait_for() {
    tries=$1
    shift
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -le "$tries" ] || return 1
        sleep 0.5
    done
}

knows() {
    "$FERRY" --socket "$(sock "$1")" users 2>/dev/null | grep -q "$2"
}

links_up() {
    [ "$(grep -c "link up" "$T/alice.log" 2>/dev/null || echo 0)" -ge "$1" ]
}

PID_BOB=$(start bob 00:00:00:00:00:02)
PID_ALICE=$(start alice 00:00:00:00:00:01)

wait_for 60 links_up 1 || fail "alice never connected to bob"
wait_for 120 knows alice bob || fail "alice never heard bob's announce"
"$FERRY" --socket "$(sock alice)" send bob "first over bluetooth" --wait 60 ||
    fail "alice's first message to bob was not confirmed"
"$FERRY" --socket "$(sock bob)" inbox --all | grep -q "first over bluetooth" ||
    fail "bob's inbox lacks the first message"
echo "ok: alice -> bob over RFCOMM, receipt back"

# The link drops: bob stops and comes back; alice must redial by herself.
kill "$PID_BOB"
wait "$PID_BOB" 2>/dev/null || true
PID_BOB=""
wait_for 20 grep -q "link down" "$T/alice.log" || fail "alice did not notice the link drop"
PID_BOB=$(start bob 00:00:00:00:00:02)
wait_for 60 links_up 2 || fail "alice did not reconnect to bob"
"$FERRY" --socket "$(sock alice)" send bob "second, after the drop" --wait 60 ||
    fail "alice's second message to bob was not confirmed"
"$FERRY" --socket "$(sock bob)" inbox --all | grep -q "second, after the drop" ||
    fail "bob's inbox lacks the second message"
echo "ok: link dropped, alice reconnected, second message delivered"
