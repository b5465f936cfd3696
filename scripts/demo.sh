#!/bin/sh
# A guided tour of ferry on this machine: three real ferryd nodes on
# loopback, a message to a node that is switched off, carried by the node in
# the middle, delivered when the recipient comes back.
#
# usage: scripts/demo.sh [BUILD_DIR]     (default: build; `make demo` runs it)
#
# Everything lives in a temporary directory and is removed at the end; only
# the daemons started here are stopped. With a terminal on stdin the tour
# pauses between steps; without one it runs straight through (about 15 s).
set -eu

BUILD=${1:-build}
FERRYD=$BUILD/bin/ferryd
FERRY=$BUILD/bin/ferry
for b in "$FERRYD" "$FERRY"; do
    [ -x "$b" ] || { echo "demo: $b not found; build first (make build)" >&2; exit 1; }
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
PIDS=""
cleanup() {
    status=$?
    for pid in $PIDS; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $PIDS; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ -t 1 ]; then
    B=$(printf '\033[1m') N=$(printf '\033[0m')
else
    B="" N=""
fi

say() {
    printf '%s\n' "$*" | fold -s -w 78 | sed 's/ *$//'
}

step() {
    echo
    if [ -t 0 ]; then
        printf '%s' "(press Enter) "
        read -r _ || true
    fi
    echo "${B}== $*${N}"
}

# as NAME ARGS...: show a ferry command as NAME would type it, then run it.
as() {
    who=$1
    shift
    echo "${B}[$who]\$ ferry $*${N}"
    "$FERRY" --socket "$DIR/$who/ferryd.sock" "$@" 2>&1 | sed 's/^/    /'
}

# quiet NAME ARGS...: the same, unseen (for waiting and for scripts).
quiet() {
    who=$1
    shift
    "$FERRY" --socket "$DIR/$who/ferryd.sock" "$@"
}

# wait_until SECONDS WHAT COMMAND...: poll until COMMAND succeeds.
wait_until() {
    secs=$1 what=$2
    shift 2
    i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt $((secs * 5)) ]; then
            echo "demo: $what did not happen within $secs s; the logs are:" >&2
            tail -n 5 "$DIR"/*.log >&2
            exit 1
        fi
        sleep 0.2
    done
}

# Three UDP ports on 127.0.0.1, from a random base, that nothing listens on.
free_ports() {
    p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000)) out="" n=3 tries=0
    while [ "$n" -gt 0 ] && [ "$tries" -lt 200 ]; do
        p=$((p + 1)) tries=$((tries + 1))
        if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Hlun "sport = :$p" 2>/dev/null)" ]; then
            continue
        fi
        out="$out $p" n=$((n - 1))
    done
    echo "$out"
}
set -- $(free_ports)
PA=$1 PB=$2 PC=$3

# start NAME PORT PEER_PORT...
start() {
    name=$1 port=$2
    shift 2
    peers=""
    for p in "$@"; do
        peers="$peers --peer 127.0.0.1:$p"
    done
    # shellcheck disable=SC2086
    "$FERRYD" --foreground --data-dir "$DIR/$name" --name "$name" --udp-port "$port" \
        --no-multicast $peers 2>>"$DIR/$name.log" &
    pid=$!
    PIDS="$PIDS $pid"
    eval "PID_$name=$pid"
    wait_until 10 "$name starting" quiet "$name" id
}

stop() {
    eval "pid=\$PID_$1"
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

knows() {
    quiet "$1" --json users | grep -q "\"name\":\"$2\""
}

offline() {
    quiet "$1" --json users | grep -o "{[^{}]*\"name\":\"$2\"[^{}]*}" | grep -q '"online":false'
}

delivered() {
    quiet "$1" --json status "$2" | grep -q '"state":"delivered"'
}

echo "${B}ferry demo: a message that waits in the mesh${N}"
say "Three ferry nodes run on this machine, each a real ferryd with its own identity, \
message store and UDP port on 127.0.0.1. They stand in a line:"
echo
echo "    alice <----> bob <----> carol"
echo
say "alice only knows bob's address and carol only knows bob's, so nothing goes \
between alice and carol unless bob carries it. Multicast discovery is off."

step "Start the three nodes"
start alice "$PA" "$PB"
start bob "$PB" "$PA" "$PC"
start carol "$PC" "$PB"
say "Each node announces itself: a signed note with its name and public key. bob \
passes alice's announce on to carol and carol's to alice, so alice learns carol's \
key without ever hearing from her directly."
wait_until 20 "alice hearing of carol" knows alice carol
wait_until 20 "carol hearing of alice" knows carol alice
as alice id
as alice users

step "carol goes away"
say "carol's node shuts down (SIGTERM). On the way out it sends a signed \
going-offline notice, so the others know at once rather than when her announce \
expires."
stop carol
wait_until 10 "alice seeing carol offline" offline alice carol
as alice offline

step "alice writes to carol anyway"
TEXT="the bridge on the north road is open again"
echo "${B}[alice]\$ ferry send carol $TEXT${N}"
out=$(quiet alice send carol "$TEXT")
echo "    $out"
ID=$(echo "$out" | sed -n 's/.*message \([0-9a-f]\{16\}\).*/\1/p')
say "The message is sealed for carol's key and stored on alice's disk before the \
command returns. alice hands a copy to bob, who keeps it for carol."
sleep 1
as alice status "$ID"
say "bob holds the sealed copy but cannot read it; his own inbox stays empty:"
as bob inbox --all

step "carol comes back"
say "carol's node starts again. It tells bob what it already has, and bob sends \
what carol lacks: the waiting message."
start carol "$PC" "$PB"
# Delivered at alice means it is in carol's inbox: wait for that without
# reading carol's inbox (which would mark it read).
wait_until 30 "the message reaching carol" delivered alice "$ID"
as carol inbox

step "The receipt travels back"
say "carol's node answers with a delivery receipt. Only carol can make it (it \
reveals a secret sealed inside the message), and every node it passes drops its \
copy. alice's node marks the message delivered:"
as alice status "$ID"

echo
say "That was the whole idea: nobody had a path from alice to carol at the moment \
she wrote, and the message got there anyway. Try it yourself: run ferryd on two \
machines of one network (they find each other by multicast), then ferry users and \
ferry chat NAME."
echo "${B}(demo finished; its nodes are stopped and their files removed)${N}"
