#!/bin/sh
# Every control command of docs/API.md between two daemons, results checked
# (ctl.py commands-tour), then the going-offline notice of a SIGTERM.
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
$CTL wait-user "$(sock alice)" bob 20
$CTL wait-user "$(sock bob)" alice 20
$CTL commands-tour "$(sock alice)" "$(sock bob)"

# Files a user relies on being private.
[ "$(stat -c %a "$T/alice")" = 700 ] || fail "data dir mode $(stat -c %a "$T/alice")"
[ "$(stat -c %a "$T/alice/identity.key")" = 600 ] || fail "identity.key is not 0600"
[ "$(stat -c %a "$(sock alice)")" = 600 ] || fail "control socket is not 0600"

# A clean stop tells the neighbours at once (not only when the announce expires).
stop alice
$CTL wait-offline "$(sock bob)" alice 10
stop bob
echo "PASS"
