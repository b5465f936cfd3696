#!/bin/sh
# Soak test for real daemons (documented, not run in CI): three ferryd nodes
# on 127.0.0.1, alice -- bob -- carol (bob relays), with a steady, bounded
# message rate (alice -> carol and carol -> alice, RATE messages a second in
# all) for MINUTES minutes. Every 30 s it samples each daemon's resident
# memory (VmRSS in /proc/PID/status), open file descriptors
# (/proc/PID/fd), the heap in use and SQLite's memory (the daemon's `stats`),
# prints a table, and at the end exits non-zero if the mean of the memory,
# the descriptors or the heap outside SQLite, for any daemon, grew by more
# than 20% from the first third of the samples to the last third (or if a
# daemon died). SQLite's share is shown, not judged: its page cache follows
# the tables as they grow (the inbox does, in this run), up to its limit.
#
# Messages live LIFETIME (20 s) rather than the default day: nodes keep
# delivery receipts for the message lifetime + 1/16 + 60 s (core/node.c),
# up to the outbox bounds, so with a day the store, and memory with it,
# would grow for the whole run by design. With 20 s the item count levels
# off after about 80 s; samples of the first WARMUP seconds are shown but
# not judged.
#
# usage: scripts/soak.sh [MINUTES] [BUILD_DIR]   (defaults: 10, build)
#
# Linux only (/proc). Everything lives in a temporary directory that is
# removed at the end; only the processes started here are signalled.
set -eu

MINUTES=${1:-10}
BUILD=${2:-build}
RATE=4         # messages per second, both directions together
INTERVAL=30    # seconds between samples
GROWTH_MAX=20  # percent
LIFETIME=20    # seconds, of every message
WARMUP=90      # seconds of samples not judged (until receipts start to expire)
FERRYD=$BUILD/bin/ferryd
HERE=$(cd "$(dirname "$0")" && pwd)
CTL="python3 $HERE/../tests/daemon/ctl.py"

case $MINUTES in
'' | *[!0-9]*) echo "soak: MINUTES must be a whole number" >&2; exit 2 ;;
esac
[ "$MINUTES" -ge 1 ] || { echo "soak: MINUTES must be at least 1" >&2; exit 2; }
[ -x "$FERRYD" ] || { echo "soak: $FERRYD not found; build first" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-soak.XXXXXX")
PIDS=""
cleanup() {
    status=$?
    for pid in $PIDS; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in $PIDS; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$T"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start() {
    name=$1 port=$2
    shift 2
    peers=""
    for p in "$@"; do
        peers="$peers --peer 127.0.0.1:$p"
    done
    # shellcheck disable=SC2086
    "$FERRYD" --foreground --config "$T/node.conf" --data-dir "$T/$name" --name "$name" \
        --udp-port "$port" --no-multicast $peers --log-level info 2>>"$T/$name.log" &
    eval "PID_$name=$!"
    PIDS="$PIDS $!"
    $CTL wait-ready "$T/$name/ferryd.sock" 15
}

printf '[node]\nlifetime = %ds\n' "$LIFETIME" >"$T/node.conf"
set -- $($CTL ports 3)
PA=$1 PB=$2 PC=$3
start alice "$PA" "$PB"
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PB"
$CTL wait-user "$T/alice/ferryd.sock" carol 30
$CTL wait-user "$T/carol/ferryd.sock" alice 30

# The load: one process, RATE sends a second, alternating directions, each
# answered before the next (so the rate stays bounded), for the whole run.
SECONDS_TOTAL=$((MINUTES * 60))
python3 - "$T/alice/ferryd.sock" "$T/carol/ferryd.sock" "$RATE" "$SECONDS_TOTAL" \
    >"$T/load.out" 2>&1 <<'PY' &
import json, socket, sys, time
a, c, rate, total = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def conn(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s, s.makefile("rb")
ends = {"carol": conn(a), "alice": conn(c)}
sent = ok = 0
start = time.time()
while time.time() - start < total:
    to = "carol" if sent % 2 == 0 else "alice"
    s, f = ends[to]
    s.sendall((json.dumps({"cmd": "send", "to": to, "text": "soak %d" % sent}) + "\n").encode())
    ok += bool(json.loads(f.readline()).get("ok"))
    sent += 1
    time.sleep(max(0.0, start + sent / rate - time.time()))
print("sent %d, accepted %d" % (sent, ok))
PY
LOAD=$!
PIDS="$PIDS $LOAD"

sample() {
    for n in alice bob carol; do
        eval "pid=\$PID_$n"
        kill -0 "$pid" 2>/dev/null || { echo "soak: $n (pid $pid) died" >&2; exit 1; }
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
        fds=$(ls "/proc/$pid/fd" | wc -l)
        # What the heap holds and what SQLite holds, to tell growth from
        # allocator slack and from a page cache filling up.
        mem=$($CTL get "$T/$n/ferryd.sock" stats 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
heap = s["daemon"].get("heap_in_use_bytes")  # absent without glibc malloc
print("?" if heap is None else heap // 1024, s["store"]["sqlite_memory_bytes"] // 1024)' ||
            echo "? ?")
        set -- "$1" $mem
        printf ' %9s %5s %8s %7s' "$rss" "$fds" "$2" "$3"
        echo "$1 $n $rss $fds $2 $3" >>"$T/samples"
    done
    echo
}

echo "soak: $MINUTES min, $RATE messages/s, a sample every $INTERVAL s"
printf '%6s %9s %5s %8s %7s %9s %5s %8s %7s %9s %5s %8s %7s\n' \
    "" alice "" "" "" bob "" "" "" carol "" "" ""
printf '%6s' t_s
for n in alice bob carol; do
    printf ' %9s %5s %8s %7s' rss_kB fds heap_kB sql_kB
done
echo
: >"$T/samples"
t0=$(date +%s)
t=0
while :; do
    printf '%6d' "$t"
    sample "$t"
    [ "$t" -lt "$SECONDS_TOTAL" ] || break
    next=$((t + INTERVAL))
    [ "$next" -le "$SECONDS_TOTAL" ] || next=$SECONDS_TOTAL
    while [ $(($(date +%s) - t0)) -lt "$next" ]; do
        sleep 1
    done
    t=$next
done
wait "$LOAD" || true
echo "load: $(cat "$T/load.out")"
for n in alice bob carol; do
    echo "$n's store: $($CTL get "$T/$n/ferryd.sock" stats store 2>/dev/null || echo '?')"
done

# Verdict: mean of the first third of the judged samples against the last
# third.
python3 - "$T/samples" "$GROWTH_MAX" "$WARMUP" <<'PY'
import sys
limit, warmup = float(sys.argv[2]), int(sys.argv[3])
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
judged = [r for r in rows if int(r[0]) >= warmup]
rows = judged if len(judged) >= 2 * 3 else rows[-2 * 3:]  # at least 2 samples a daemon
bad = False
for name in ("alice", "bob", "carol"):
    mine = [r[2:6] for r in rows if r[1] == name]
    # A fifth series: the heap outside SQLite (heap minus SQLite's share).
    mine = [m + [str(int(m[2]) - int(m[3])) if m[2].isdigit() and m[3].isdigit() else "?"]
            for m in mine]
    k = max(1, len(mine) // 3)
    # rss, fds and the heap outside SQLite are judged. SQLite's share is
    # shown: its page cache follows the tables as they grow, up to its limit
    # (2,000 KiB by default), by design.
    for i, what, judge in ((0, "rss", 1), (1, "fds", 1), (2, "heap", 0), (3, "sql", 0),
                           (4, "heap outside SQLite", 1)):
        if any(not m[i].isdigit() for m in mine):
            print("%-6s %-19s not sampled" % (name, what))
            continue
        first = sum(int(m[i]) for m in mine[:k]) / k
        last = sum(int(m[i]) for m in mine[-k:]) / k
        growth = 100.0 * (last - first) / first if first else 0.0
        verdict = ("ok" if growth <= limit else "GROWS") if judge else "(shown)"
        bad |= judge and growth > limit
        print("%-6s %-19s first third %9.0f  last third %9.0f  growth %+6.1f%%  %s"
              % (name, what, first, last, growth, verdict))
sys.exit(1 if bad else 0)
PY
