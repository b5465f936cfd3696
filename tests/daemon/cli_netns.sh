#!/bin/sh
# Two ferryd in two network namespaces joined by a bridge, finding each other
# with the default multicast discovery (no static peers, no configuration),
# then exchanging a message and its receipt.
#
# The test builds its own little network and nothing is routed out: a third
# namespace holds the bridge, each node's namespace has one veth onto it,
# addresses are 10.200.1.0/24 inside the namespaces only, and the only route
# added is for multicast on that veth. Needs root (or CAP_NET_ADMIN and
# CAP_SYS_ADMIN); where namespaces cannot be made it prints why and exits 77,
# which ctest reports as skipped.
. "$(dirname "$0")/cli_lib.sh" "$@"

skip() {
    echo "SKIP: $*"
    exit 77
}

[ "$(id -u)" -eq 0 ] || skip "creating network namespaces needs root"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"

NS_SW="fe-cli-sw-$$" NS_A="fe-cli-a-$$" NS_B="fe-cli-b-$$"
NAMESPACES=""
del_namespaces() {
    for ns in $NAMESPACES; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
CLI_EXTRA_CLEANUP=del_namespaces

for ns in "$NS_SW" "$NS_A" "$NS_B"; do
    ip netns add "$ns" 2>"$T/ip.err" || skip "ip netns add failed: $(cat "$T/ip.err")"
    NAMESPACES="$NAMESPACES $ns"
done

step "a bridge in its own namespace, one veth to each node"
net() {
    "$@" 2>"$T/ip.err" || skip "cannot build the test network ($*): $(cat "$T/ip.err")"
}
net ip -n "$NS_SW" link add br0 type bridge mcast_snooping 0
net ip -n "$NS_SW" link set br0 up
i=1
for ns in "$NS_A" "$NS_B"; do
    net ip -n "$NS_SW" link add "port$i" type veth peer name eth0 netns "$ns"
    net ip -n "$NS_SW" link set "port$i" master br0 up
    net ip -n "$ns" link set lo up
    net ip -n "$ns" addr add "10.200.1.$i/24" dev eth0
    net ip -n "$ns" link set eth0 up
    # No default route: multicast finds eth0 by this route alone.
    net ip -n "$ns" route add 224.0.0.0/4 dev eth0
    i=$((i + 1))
done

step "one ferryd in each namespace, default discovery"
# `ip netns exec` execs the command, so $! is the daemon's pid.
for who in alice bob; do
    ns=$NS_A
    [ "$who" = bob ] && ns=$NS_B
    ip netns exec "$ns" "$FERRYD" --foreground --data-dir "$T/$who" --name "$who" \
        --log-level debug 2>>"$T/$who.log" &
    pid=$!
    STARTED="$STARTED $pid"
    eval "PID_$who=$pid"
    wait_for 15 "$who did not start" f "$who" id
done
grep -q "group 239\.255\.70\.1" "$T/alice.log" || fail "alice is not using multicast discovery"
grep -q "0 static peers" "$T/alice.log" || fail "alice has static peers"

wait_for 40 "alice never discovered bob" knows alice bob
wait_for 40 "bob never discovered alice" knows bob alice
f alice users

step "a message across the namespaces"
out=$(f alice send bob --wait 30 hello across the bridge) || fail "send --wait failed: $out"
echo "$out"
echo "$out" | grep -q "^delivered after" || fail "no receipt: $out"
inbox_has bob "alice: hello across the bridge" || fail "bob's inbox lacks the message"
f bob send alice and back >/dev/null
wait_for 30 "alice never got bob's reply" inbox_has alice "bob: and back"

stop alice
stop bob
echo "PASS"
