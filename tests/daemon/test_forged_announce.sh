#!/bin/sh
# A forged announce against a real daemon. alice and bob know each other;
# a rogue peer (adversary forge-announce) then tells alice, with a fresh
# key and a valid signature, that it is "bob". alice must keep "bob" bound
# to the real key, list the newcomer with name_conflict, emit a
# name_conflict presence event, and `ferry send bob` must still reach the
# real bob. Then the rogue sends bob's own key with a higher sequence
# number (once as "bob", once renaming him "mallory") under its own
# signature: both must fail to verify and change nothing. The impostor's
# key sorts before bob's, and alice is restarted at the end: the binding
# must not depend on the order in which her store gives the keys back.
. "$(dirname "$0")/lib.sh" "$@"
need_adv
FERRY=$(dirname "$FERRYD")/ferry
[ -x "$FERRY" ] || fail "no ferry binary next to $FERRYD"

set -- $($CTL ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
$CTL wait-user "$(sock bob)" alice 20
bob_addr=$($CTL get "$(sock bob)" id address)
bob_pk=$($CTL get "$(sock bob)" id public_key)

$CTL events "$(sock alice)" 60 "$T/events" &
EVENTS=$!
STARTED="$STARTED $EVENTS"
wait_file "$T/events" 5 # it exists once the subscription is in place
auth0=$($CTL get "$(sock alice)" stats engine auth_failures)

# 1. A fresh key claims the name "bob".
"$ADV" forge-announce --to "$PA" --name bob --below-pk "$bob_pk" >"$T/rogue"
rogue_addr=$(sed -n 's/^address //p' "$T/rogue")
[ ${#rogue_addr} -eq 32 ] || fail "the rogue did not say its address: $(cat "$T/rogue")"
i=0
until "$FERRY" --socket "$(sock alice)" --json users | grep -q "$rogue_addr"; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "alice did not list the rogue's key within 10 s"
    sleep 0.1
done
"$FERRY" --socket "$(sock alice)" --json users >"$T/users"
check_users() {
    python3 - "$1" "$bob_addr" "$rogue_addr" <<'EOF' || fail "alice's directory: $2"
import json, sys
users = json.load(open(sys.argv[1]))["users"]
real, rogue = sys.argv[2], sys.argv[3]
named = [u for u in users if u["name"] == "bob"]
by_addr = {u["address"]: u for u in named}
assert set(by_addr) == {real, rogue}, "users named bob: %s" % named
assert by_addr[real]["name_conflict"] is False, by_addr[real]
assert by_addr[rogue]["name_conflict"] is True, by_addr[rogue]
print("alice: bob -> %s (name_conflict false); rogue %s listed as bob with name_conflict true"
      % (real[:8], rogue[:8]))
EOF
}
check_users "$T/users" "after the forged announce"
wait_grep "$T/events" '"state": "name_conflict"' 10
python3 - "$T/events" "$rogue_addr" <<'EOF' || fail "the name_conflict event"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
hits = [e for e in evs if e.get("event") == "presence" and e.get("state") == "name_conflict"]
assert [e["user"]["address"] for e in hits] == [sys.argv[2]], hits
assert hits[0]["user"]["name"] == "bob" and hits[0]["user"]["name_conflict"] is True, hits[0]
print("presence event name_conflict for %s" % sys.argv[2][:8])
EOF

# 2. bob's own key, signed by the rogue, with a higher sequence number.
"$ADV" forge-announce --to "$PA" --name bob --steal-pk "$bob_pk" --seq 4000000000 >/dev/null
"$ADV" forge-announce --to "$PA" --name mallory --steal-pk "$bob_pk" --seq 4000000001 >/dev/null
auth=$($CTL wait-stat "$(sock alice)" engine auth_failures $((auth0 + 2)) 10)
echo "alice rejected $((auth - auth0)) announces with bob's key and a foreign signature"
"$FERRY" --socket "$(sock alice)" --json users >"$T/users2"
python3 - "$T/users" "$T/users2" "$bob_addr" <<'EOF' || fail "alice's directory after the stolen-key announces"
import json, sys
before = {u["address"]: u for u in json.load(open(sys.argv[1]))["users"]}
after = {u["address"]: u for u in json.load(open(sys.argv[2]))["users"]}
assert set(before) == set(after), (sorted(before), sorted(after))
b = after[sys.argv[3]]
assert b["name"] == "bob" and b["name_conflict"] is False, b
assert not any(u["name"] == "mallory" for u in after.values()), after
EOF

# 3. Sending to "bob" reaches the real bob, receipt included.
"$FERRY" --socket "$(sock alice)" --json send bob "for the real bob" --wait 20 >"$T/send" ||
    fail "ferry send bob --wait failed ($?): $(cat "$T/send")"
to=$(head -n 1 "$T/send" | python3 -c 'import json,sys; print(json.load(sys.stdin)["to"])')
[ "$to" = "$bob_addr" ] || fail "ferry send bob went to $to, not to the real bob $bob_addr"
grep -q '"delivered"' "$T/send" || fail "no delivered status: $(cat "$T/send")"
set -- $($CTL wait-texts "$(sock bob)" "for the real bob" 1 10)
if [ "$1" -ne 1 ] || [ "$2" -ne 1 ]; then
    fail "the real bob has $2 copies of the message"
fi
echo "ferry send bob: delivered to the real bob ($bob_addr), receipt back at alice"

# 4. After a restart, from what alice's store kept: still the real bob.
kill "$EVENTS" 2>/dev/null || true
stop alice
start alice "$PA" "$PB"
"$FERRY" --socket "$(sock alice)" --json users >"$T/users3"
check_users "$T/users3" "after a restart"
"$FERRY" --socket "$(sock alice)" --json send bob "after the restart" >"$T/send2" ||
    fail "ferry send bob after the restart failed"
to=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["to"])' <"$T/send2")
[ "$to" = "$bob_addr" ] || fail "after a restart, ferry send bob went to $to, not to $bob_addr"
set -- $($CTL wait-texts "$(sock bob)" "after the restart" 1 20)
[ "$1" -eq 1 ] || fail "the real bob did not get the message sent after the restart"
stop alice
stop bob
echo "PASS"
