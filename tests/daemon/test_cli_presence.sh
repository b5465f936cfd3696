#!/bin/sh
# Directory and presence through the CLI: users, online and offline list the
# right people, and a daemon stopped with SIGTERM shows as offline at once
# (its signed going-offline notice), long before its announce would expire.
. "$(dirname "$0")/cli_lib.sh" "$@"

set -- $(ports 3)
PA=$1 PB=$2 PC=$3
start alice "$PA" "$PB" "$PC"
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PA" "$PB"
for pair in "alice bob" "alice carol" "bob alice" "bob carol" "carol alice" "carol bob"; do
    set -- $pair
    wait_for 30 "$1 never saw $2 online" sees_online "$1" "$2"
done

step "everyone online"
f alice users
f alice online | grep -q "^bob " || fail "online lacks bob"
f alice online | grep -q "^carol " || fail "online lacks carol"
[ "$(f alice offline)" = "no one is offline" ] || fail "offline: $(f alice offline)"
f alice users | head -n 1 | grep -q "^NAME *ADDRESS *ONLINE *LAST SEEN *FINGERPRINT *FLAGS$" ||
    fail "users heading: $(f alice users | head -n 1)"
# The fingerprint alice shows for bob is the one bob's own `ferry id` shows.
fpr=$(f bob id | sed -n 's/^fingerprint: *//p')
[ -n "$fpr" ] || fail "bob's id shows no fingerprint"
f alice users | grep "^bob " | grep -qF "$fpr" || fail "alice shows another fingerprint for bob"

step "verify"
f alice verify bob | grep -qF "$fpr" || fail "verify does not show the fingerprint"
f alice users | grep "^bob " | grep -q "verified" || fail "bob not flagged verified"
f alice users | grep "^carol " | grep -q "verified" && fail "carol flagged verified"
status=0
f alice verify nobody 2>/dev/null || status=$?
[ "$status" -eq 1 ] || fail "verify of an unknown user: exit $status, not 1"

step "bob stops with SIGTERM"
stop bob
# Well inside the announce lifetime: only the going-offline notice explains this.
wait_for 5 "alice does not show bob offline" sees_offline alice bob
wait_for 5 "carol does not show bob offline" sees_offline carol bob
f alice offline | grep -q "^bob .* no " || fail "offline lacks bob: $(f alice offline)"
f alice online | grep -q "^bob " && fail "bob still listed online"
f alice online | grep -q "^carol " || fail "carol dropped from online"
sees_online carol alice || fail "carol no longer sees alice online"

stop alice
stop carol
echo "PASS"
