#!/bin/sh
# A group of three through the CLI: alice creates it and invites bob and carol
# by private message; each joins with the invite read from their inbox; each
# writes to the group and the other two receive it. A member who left gets
# nothing more.
. "$(dirname "$0")/cli_lib.sh" "$@"

set -- $(ports 3)
PA=$1 PB=$2 PC=$3
start alice "$PA" "$PB" "$PC"
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PA" "$PB"
wait_for 30 "alice never heard of bob" knows alice bob
wait_for 30 "alice never heard of carol" knows alice carol

step "alice creates #camp and invites bob and carol"
out=$(f alice group create camp)
echo "$out"
echo "$out" | grep -q "^created group #camp ([0-9a-f]\{32\})$" || fail "create printed: $out"
gid=$(echo "$out" | sed -n 's/^created group #camp (\([0-9a-f]*\))$/\1/p')
f alice group invite camp bob | grep -q "^sent the invite to bob" || fail "invite to bob"
f alice group invite '#camp' carol >/dev/null || fail "invite to carol"

for who in bob carol; do
    step "$who joins from the invite in the inbox"
    wait_for 30 "$who never got the invite" inbox_has "$who" "alice: ferry-invite:camp:"
    invite=$(f "$who" inbox --all | grep -o "ferry-invite:camp:[0-9a-f]\{64\}" | head -n 1)
    f "$who" inbox --all | grep -qF "to join: ferry group join '$invite'" ||
        fail "the inbox does not say how to join"
    out=$(f "$who" group join "$invite")
    [ "$out" = "joined group #camp ($gid)" ] || fail "$who join printed: $out"
    f "$who" group list | grep -q "^#camp *$gid$" ||
        fail "$who's group list: $(f "$who" group list)"
done

step "each member writes, the other two read"
f alice group send camp hello from alice | grep -q "^sent to #camp (message [0-9a-f]\{16\})$" ||
    fail "group send output"
f bob group send '#camp' hello from bob >/dev/null
f carol group send "$gid" hello from carol >/dev/null
for pair in "alice bob" "alice carol" "bob alice" "bob carol" "carol alice" "carol bob"; do
    set -- $pair
    wait_for 30 "$1 never read $2's group message" inbox_has "$1" "#camp $2: hello from $2"
done
f alice inbox --all | grep -q "#camp alice:" && fail "alice's own group message is in her inbox"

step "carol leaves; later messages do not reach her"
[ "$(f carol group leave camp)" = "left group #camp" ] || fail "leave output"
[ "$(f carol group list)" = "no groups (create one with: ferry group create NAME)" ] ||
    fail "carol still lists a group"
f alice group send camp after carol left >/dev/null
wait_for 30 "bob never read the later message" inbox_has bob "#camp alice: after carol left"
sleep 2
inbox_has carol "after carol left" && fail "carol read a group message after leaving"

status=0
f alice group send nosuchgroup hi 2>"$T/err" || status=$?
[ "$status" -eq 1 ] || fail "send to an unknown group: exit $status, not 1"

stop alice
stop bob
stop carol
echo "PASS"
