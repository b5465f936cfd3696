#!/bin/sh
# A store that cannot be written (here: files capped with RLIMIT_FSIZE, as
# a full disk behaves): sends are answered `store`, the daemon keeps
# serving, nothing it refused is ever delivered, and everything it
# acknowledged is, also after a restart.
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 2)
PA=$1 PB=$2
start bob "$PB" "$PA"
WRAP="$CTL exec-limited 1000000"
start alice "$PA" "$PB"
WRAP=""
$CTL wait-user "$(sock alice)" bob 20
$CTL wait-user "$(sock bob)" alice 20

$CTL send-until-store "$(sock alice)" bob 5000 "$T/ok" "$T/refused" >/dev/null
echo "acknowledged $(wc -l <"$T/ok"), then $(wc -l <"$T/refused") refused with \`store\`"
$CTL get "$(sock alice)" id name >/dev/null # still serving
$CTL wait-stat "$(sock alice)" daemon commit_failures 1 5 >/dev/null
grep -q "writing failed" "$T/alice.log" || fail "the failure was not logged"
$CTL wait-inbox "$(sock bob)" "$T/ok" 30
sleep 2
$CTL inbox-lacks "$(sock bob)" "$T/refused"
stop alice

# Without the cap, alice still has exactly what she acknowledged.
start alice "$PA" "$PB"
$CTL send "$(sock alice)" bob "after the disk was freed" >/dev/null
sleep 3
$CTL inbox-lacks "$(sock bob)" "$T/refused"
stop alice
stop bob
echo "PASS"
