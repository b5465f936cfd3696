#!/bin/sh
# Three ferryd over emulated LoRa modems in a chain: A's radio hears only
# B's, B's hears A's and C's, C's hears only B's. A message from alice to
# carol must be relayed by bob, and carol's receipt must come back to alice.
#
# Usage: serial_relay.sh BIN_DIR [SHIM_SO]   (the build's bin directory:
# ferryd, ferry, ferry-modem-emu; and libferry_ptyshim.so, preloaded into
# the daemons so that libserialport accepts the emulator's ptys). Exits 77
# (skipped) while ferryd has no serial transport (detected with "ferryd
# --help | grep serial"); it then needs the [serial NAME] configuration
# section described in hw/README.md.
#
# Only processes started here are signalled, by pid; the EXIT trap stops
# them and removes the temporary directory.
set -eu

BIN=${1:?usage: $0 BIN_DIR [SHIM_SO]}
SHIM=${2:-}
FERRYD=$BIN/ferryd
FERRY=$BIN/ferry
EMU=$BIN/ferry-modem-emu

if [ ! -x "$FERRYD" ] || [ ! -x "$FERRY" ] || [ ! -x "$EMU" ]; then
    echo "skip: needs ferryd, ferry and ferry-modem-emu in $BIN" >&2
    exit 77
fi
if ! "$FERRYD" --help 2>&1 | grep -q serial; then
    echo "skip: this ferryd has no serial transport yet" >&2
    exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-relay.XXXXXX")
STARTED=""
cleanup() {
    status=$?
    for pid in $STARTED; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $STARTED; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$T"/*.log; do
            [ -f "$log" ] || continue
            echo "--- $log (last 30 lines)" >&2
            tail -n 30 "$log" >&2
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

# The air: 3 AT modems, 19.2 kb/s, 5% loss, chain topology.
mkdir "$T/radio"
"$EMU" --dir "$T/radio" --modems 3 --profile at --link 0-1 --link 1-2 \
    --air-rate 19200 --loss 0.05 --seed 11 --max-seconds 280 2>"$T/emu.log" &
STARTED="$STARTED $!"
i=0
while [ ! -f "$T/radio/ready" ]; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "the modem emulator did not start"
    sleep 0.05
done

# One daemon per modem, radio only (no UDP, so they cannot cheat).
n=0
for name in alice bob carol; do
    cat >"$T/$name.conf" <<CONF
[node]
name = $name
data_dir = $T/$name
log_level = debug

[udp]
enabled = false

[serial radio]
path = $T/radio/modem$n
profile = at
baud = 115200
air_rate = 19200
at_init = AT+NETWORKID=5
CONF
    if [ -n "$SHIM" ]; then
        env LD_PRELOAD="$SHIM" \
            ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
            "$FERRYD" --foreground --config "$T/$name.conf" 2>>"$T/$name.log" &
    else
        "$FERRYD" --foreground --config "$T/$name.conf" 2>>"$T/$name.log" &
    fi
    STARTED="$STARTED $!"
    n=$((n + 1))
done

sock() {
    echo "$T/$1/ferryd.sock"
}

# Wait until alice knows carol (her announce came through bob).
i=0
until "$FERRY" --socket "$(sock alice)" users 2>/dev/null | grep -q carol; do
    i=$((i + 1))
    [ "$i" -le 120 ] || fail "alice never heard of carol"
    sleep 0.5
done

"$FERRY" --socket "$(sock alice)" send carol "water at the north gate" --wait 120 ||
    fail "alice's message to carol was not confirmed"
"$FERRY" --socket "$(sock carol)" inbox --all | grep -q "water at the north gate" ||
    fail "carol's inbox lacks the message"
echo "ok: alice -> bob -> carol over emulated radios, receipt back"
