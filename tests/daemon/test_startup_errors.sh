#!/bin/sh
# Start-up failures are one clear line and a status, never a crash: a bad
# config file (exit 2, FILE:LINE: message), a damaged database and an
# unwritable one (exit 1, naming the file).
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 1)
P=$1
printf '[node]\nname = x\n[udp]\nport = 99999\n' >"$T/bad.conf"
status=0
"$FERRYD" --foreground --config "$T/bad.conf" --data-dir "$T/d1" 2>"$T/err1" || status=$?
[ "$status" -eq 2 ] || fail "bad config: exit $status, wanted 2"
grep -q "^$T/bad.conf:4: " "$T/err1" || fail "bad config message: $(cat "$T/err1")"

mkdir -p "$T/d2"
chmod 700 "$T/d2"
head -c 8192 /dev/urandom >"$T/d2/ferry.db"
status=0
"$FERRYD" --foreground --data-dir "$T/d2" --udp-port "$P" --no-multicast 2>"$T/err2" || status=$?
[ "$status" -eq 1 ] || fail "damaged db: exit $status, wanted 1"
grep -q "ferry.db.*damaged" "$T/err2" || fail "damaged db message: $(cat "$T/err2")"
[ "$(grep -c "error:" "$T/err2")" -eq 1 ] || fail "not one error line: $(cat "$T/err2")"

status=0
"$FERRYD" --foreground --data-dir "$T/d3" --udp-port 0x --no-multicast 2>"$T/err3" || status=$?
[ "$status" -eq 2 ] || fail "bad --udp-port: exit $status, wanted 2"

# A store path that cannot be a database at all (works even as root).
mkdir -p "$T/d5/ferry.db"
status=0
"$FERRYD" --foreground --data-dir "$T/d5" --udp-port "$P" --no-multicast 2>"$T/err5" || status=$?
[ "$status" -eq 1 ] || fail "db is a directory: exit $status, wanted 1"
grep -q "ferry.db" "$T/err5" || fail "db is a directory message: $(cat "$T/err5")"
[ "$(grep -c "error:" "$T/err5")" -eq 1 ] || fail "not one error line: $(cat "$T/err5")"

if [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$T/d4"
    : >"$T/d4/ferry.db"
    chmod 400 "$T/d4/ferry.db"
    status=0
    "$FERRYD" --foreground --data-dir "$T/d4" --udp-port "$P" --no-multicast 2>"$T/err4" ||
        status=$?
    [ "$status" -eq 1 ] || fail "read-only db: exit $status, wanted 1"
    grep -q "ferry.db" "$T/err4" || fail "read-only db message: $(cat "$T/err4")"
fi
echo "PASS"
