#!/bin/sh
# Flooding, with real daemons: alice -- bob -- carol, and frank -- bob
# (bob relays everything). carol is offline. alice, the honest sender, sends
# 20 messages to carol, first alone (the baseline), then while frank sends
# FLOOD messages to carol as fast as his socket accepts them. When carol
# returns, all 20 honest messages of both rounds must arrive, and bob's
# store for frank must stay bounded (per-origin quota, outbox bounds).
# A flooder that ignores its own quota (not a stock daemon) is
# test_flood_raw.sh.
. "$(dirname "$0")/lib.sh" "$@"

HONEST=20
FLOOD=${FLOOD_COUNT:-2000}
OUTBOX_CAPACITY=8192 # FE_OUTBOX_CAPACITY (core/limits.h)
ORIGIN_QUOTA=256     # FE_ORIGIN_QUOTA (core/limits.h)

set -- $($CTL ports 4)
PA=$1 PB=$2 PC=$3 PF=$4
start bob "$PB" "$PA" "$PC" "$PF"
start alice "$PA" "$PB"
start carol "$PC" "$PB"
start frank "$PF" "$PB"
$CTL wait-user "$(sock alice)" carol 30
$CTL wait-user "$(sock frank)" carol 30
stop carol

# round_end NAME: carol returns; sets GOT to how many of the honest
# messages "NAME-<i>" arrived within 60 s. (Not run in $(...): carol,
# started here, would hold the substitution's pipe open.)
round_end() {
    start carol "$PC" "$PB"
    set -- $($CTL wait-texts "$(sock carol)" "$1-" "$HONEST" 60)
    [ "$2" -eq "$1" ] || fail "carol got an honest message twice ($2 copies of $1)"
    GOT=$1
}

: >"$T/acked-base"
$CTL flood-texts "$(sock alice)" carol "$HONEST" honest-base "$T/acked-base" >/dev/null
base_acked=$(wc -l <"$T/acked-base")
round_end honest-base
base=$GOT
stop carol

: >"$T/acked-flood"
: >"$T/acked-frank"
t0=$(date +%s)
$CTL flood-texts "$(sock frank)" carol "$FLOOD" flood "$T/acked-frank" 50 >"$T/frank.out" &
FRANK=$!
STARTED="$STARTED $FRANK"
$CTL flood-texts "$(sock alice)" carol "$HONEST" honest-flood "$T/acked-flood" >/dev/null
flood_acked=$(wc -l <"$T/acked-flood")
i=0
while kill -0 "$FRANK" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 900 ] || fail "frank's $FLOOD sends did not end within 90 s"
    sleep 0.1
done
wait "$FRANK" || fail "the flooder failed"
frank_acked=$(cat "$T/frank.out")
echo "frank: $frank_acked of $FLOOD sends accepted in $(($(date +%s) - t0)) s"
# Give bob the time to take in what frank and alice forward.
sleep 5
$CTL stats "$(sock bob)" >"$T/bob-stats"
round_end honest-flood
with=$GOT
$CTL stats "$(sock bob)" >"$T/bob-stats-after"

read -r held rejects <<EOS
$(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["engine"]
print(e["items_held"], e["quota_rejects"])' "$T/bob-stats")
EOS
echo "honest delivery: baseline $base/$HONEST (of $base_acked accepted)," \
    "under flood $with/$HONEST (of $flood_acked accepted)"
echo "bob during the flood: items_held=$held quota_rejects=$rejects" \
    "(frank had $frank_acked accepted)"
if [ "$base_acked" -ne "$HONEST" ] || [ "$flood_acked" -ne "$HONEST" ]; then
    fail "alice did not accept all her sends"
fi
[ "$base" -eq "$HONEST" ] || fail "baseline: only $base of $HONEST honest messages arrived"
[ "$with" -eq "$HONEST" ] || fail "under flood: only $with of $HONEST honest messages arrived"
[ "$held" -le "$OUTBOX_CAPACITY" ] || fail "bob holds $held items, above the outbox capacity"
# The flood is bounded somewhere: frank's own daemon refuses sends beyond
# one origin quota (`full`), or bob rejects what exceeds it. Either way bob
# holds at most one quota per origin (four nodes) plus nothing unbounded.
[ "$frank_acked" -le "$ORIGIN_QUOTA" ] || [ "$rejects" -gt 0 ] ||
    fail "frank had $frank_acked sends accepted and bob rejected none: no quota at work"
[ "$held" -le $((4 * ORIGIN_QUOTA)) ] ||
    fail "bob holds $held items, more than one quota ($ORIGIN_QUOTA) for each of 4 origins"
# Memory is bounded too: bob's heap (glibc) and SQLite's share, after the
# flood. The bound is loose (the outbox's own limit is a few MiB); what it
# catches is growth with the number of frames heard.
python3 - "$T/bob-stats-after" <<'PY' || fail "bob's memory after the flood is out of bounds"
import json, sys
s = json.load(open(sys.argv[1]))
heap = s["daemon"].get("heap_in_use_bytes")
sql = s["store"]["sqlite_memory_bytes"]
print("bob after the flood: heap in use %s KiB, SQLite %d KiB"
      % ("?" if heap is None else heap // 1024, sql // 1024))
assert 0 < sql <= 16 << 20, sql
assert heap is None or 0 < heap <= 32 << 20, heap
PY
stop alice
stop bob
stop carol
stop frank
echo "PASS"
