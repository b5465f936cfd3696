#!/bin/sh
# A bridge between media: bob runs UDP and a serial radio, alice has UDP
# only, carol a serial radio only. alice's message to carol must cross bob
# (UDP in, radio out) and carol's receipt come back (radio in, UDP out);
# the other way round as well. bob's `peers` must show both links up with
# their counters, the radio's airtime and queue. When carol stops, her
# going-offline notice must still leave her radio, twice.
#
# The radios are two emulated transparent modules (ferry-modem-emu, 58-byte
# sub-packets at 19.2 kb/s, so every message is fragmented) on ptys; the
# daemons run with the test-only pty shim preloaded, which lets
# libserialport open a pty. UDP is 127.0.0.1 only. Everything started here
# is in STARTED and killed by pid on exit (lib.sh).
. "$(dirname "$0")/lib.sh" "$@"

BIN=$(cd "$(dirname "$FERRYD")" && pwd)
EMU=$BIN/ferry-modem-emu
SHIM=$BIN/../tests/transports/libferry_ptyshim.so

if ! "$FERRYD" --help | grep -q "Serial support: yes"; then
    echo "skip: this ferryd was built without serial support" >&2
    exit 77
fi
[ -x "$EMU" ] || fail "no modem emulator at $EMU"
[ -f "$SHIM" ] || fail "no pty shim at $SHIM"

mkdir "$T/radio"
"$EMU" --dir "$T/radio" --modems 2 --profile transparent --subpacket 58 --air-rate 19200 \
    --seed 7 --max-seconds 170 2>"$T/emu.log" &
STARTED="$STARTED $!"
i=0
while [ ! -f "$T/radio/ready" ]; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "the modem emulator did not start"
    sleep 0.05
done

# radio_conf NAME MODEM: the [serial radio] section of NAME's config file.
radio_conf() {
    cat >"$T/$1.conf" <<CONF
[serial radio]
path = $T/radio/modem$2
profile = transparent
baud = 115200
subpacket = 58
air_rate = 19200
CONF
}

# start_with NAME OPTION...: like lib.sh's start, with the pty shim preloaded
# (env execs the daemon, so $! is its pid) and the options given.
start_with() {
    name=$1
    shift
    env LD_PRELOAD="$SHIM" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        "$FERRYD" --foreground --data-dir "$T/$name" --name "$name" --log-level debug "$@" \
        2>>"$T/$name.log" &
    pid=$!
    STARTED="$STARTED $pid"
    eval "PID_$name=$pid"
    $CTL wait-ready "$(sock "$name")" 15 || fail "$name did not start"
}

set -- $($CTL ports 2)
PA=$1 PB=$2
radio_conf bob 0
radio_conf carol 1
start alice "$PA" "$PB"
start_with bob --config "$T/bob.conf" --udp-port "$PB" --no-multicast --peer "127.0.0.1:$PA"
start_with carol --config "$T/carol.conf" --no-udp

# The announces cross the bridge both ways.
$CTL wait-user "$(sock alice)" carol 60
$CTL wait-user "$(sock carol)" alice 60

# alice (UDP) -> carol (radio), and the receipt back.
text="water at the north gate"
id=$($CTL send "$(sock alice)" carol "$text")
echo "$id" >"$T/want"
$CTL wait-inbox "$(sock carol)" "$T/want" 60
from=$($CTL inbox-has "$(sock carol)" "$id" "$text")
[ "$from" = alice ] || fail "carol's message is from '$from', not alice"
$CTL wait-status "$(sock alice)" "$id" delivered 60
echo "ok: alice (udp) -> bob -> carol (radio), receipt back"

# carol (radio) -> alice (UDP).
text="the bridge on route 9 is out"
id=$($CTL send "$(sock carol)" alice "$text")
echo "$id" >"$T/want"
$CTL wait-inbox "$(sock alice)" "$T/want" 60
from=$($CTL inbox-has "$(sock alice)" "$id" "$text")
[ "$from" = carol ] || fail "alice's message is from '$from', not carol"
$CTL wait-status "$(sock carol)" "$id" delivered 60
echo "ok: carol (radio) -> bob -> alice (udp), receipt back"

# bob relayed, and his links show it.
$CTL wait-stat "$(sock bob)" engine relayed 1 5 >/dev/null
$CTL get "$(sock bob)" peers >"$T/bob.peers"
$CTL get "$(sock carol)" peers >"$T/carol.peers"
python3 - "$T/bob.peers" "$T/carol.peers" <<'PY' || fail "peers: $(cat "$T/bob.peers")"
import json, sys
bob = json.load(open(sys.argv[1]))
links = {l["transport"]: l for l in bob["links"]}
assert set(links) == {"udp", "serial"}, bob["links"]
u, s = links["udp"], links["serial"]
assert u["link_id"] == 1 and u["kind"] == "broadcast" and u["up"] is True, u
assert s["name"] == "serial radio" and s["kind"] == "broadcast" and s["up"] is True, s
assert s["mtu"] == 50, s  # one 58-byte sub-packet, after framing
assert s["port_state"] == "open" and s["reopens"] == 0, s
for side in (u, s):
    assert side["rx_frames"] > 0 and side["tx_frames"] > 0, side
assert s["airtime_used_ms"] > 0 and s["airtime_window_s"] == 3600, s
assert s["airtime_budget_ms"] is None and isinstance(s["queued"], int), s
assert [t["transport"] for t in bob["transports"]] == ["udp", "serial"], bob["transports"]
carol = json.load(open(sys.argv[2]))
assert [l["name"] for l in carol["links"]] == ["serial radio"], carol["links"]
PY
echo "ok: bob's peers show the udp and the radio link"

# `ports` answers with a list (what it holds depends on the machine).
$CTL get "$(sock bob)" ports ports | python3 -c \
    'import json, sys; assert isinstance(json.load(sys.stdin), list)' || fail "ports"

# carol leaves: her going-offline notice is queued for the radio as she
# shuts down, and must still go out (ferryd lets radio queues drain, within
# a bound, before it closes them). A copy can be lost when bob transmits at
# the same moment (the emulated radios are half-duplex), so she says it again
# once the air is quiet.
stop carol
offline() {
    $CTL get "$(sock bob)" users users | python3 -c '
import json, sys
users = {u["name"]: u for u in json.load(sys.stdin)}
sys.exit(0 if users["carol"]["online"] is False else 1)'
}
i=0
until offline; do
    i=$((i + 1))
    [ "$i" -le 50 ] || fail "bob never heard carol's going-offline notice"
    sleep 0.1
done
grep -q "going-offline notice sent again" "$T/carol.log" ||
    fail "carol did not say her going-offline notice a second time"
echo "ok: carol's going-offline notice left her radio queue before she exited, twice"

stop alice
stop bob
grep -q "serial radio: opened" "$T/bob.log" || fail "bob's log does not name the radio section"
echo "PASS"
