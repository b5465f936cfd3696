# Shared by the ferry CLI tests (test_cli_*.sh); sourced, not run. The tests
# drive real ferryd processes only through the `ferry` command, as a user or
# a script would. Each test has its own temporary directory, its own UDP ports
# on 127.0.0.1 (picked free at the start), multicast off and static peers
# only. Only processes started here are signalled, by pid; the EXIT trap
# stops whatever still runs and removes the directory.
#
# Usage in a test:  . "$(dirname "$0")/cli_lib.sh" "$@"   (argument: the ferryd binary;
# ferry is expected next to it, as the build puts both in bin/)

set -eu

FERRYD=${1:?usage: $0 PATH-TO-FERRYD}
BIN=$(cd "$(dirname "$FERRYD")" && pwd)
FERRY=$BIN/ferry
[ -x "$FERRY" ] || { echo "FAIL: no ferry binary next to $FERRYD" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-cli.XXXXXX")
STARTED=""

cli_cleanup() {
    status=$?
    for pid in $STARTED; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for pid in $STARTED; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    # A test's own teardown (tmux server, namespaces), after its daemons are gone.
    if [ -n "${CLI_EXTRA_CLEANUP:-}" ]; then
        $CLI_EXTRA_CLEANUP || true
    fi
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
        for log in "$T"/*.log; do
            [ -f "$log" ] || continue
            echo "--- $log (last 30 lines)" >&2
            tail -n 30 "$log" >&2
        done
    fi
    rm -rf "$T"
    exit "$status"
}
trap cli_cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "-- $*"
}

# A random number 0..65535, from the kernel.
rand16() {
    od -An -N2 -tu2 /dev/urandom | tr -d ' '
}

# ports N: N free UDP ports on 127.0.0.1, from a random base in 20000..59999,
# so tests running at the same time are unlikely to meet.
ports() {
    n=$1 out="" tries=0
    p=$((20000 + $(rand16) % 40000))
    while [ "$n" -gt 0 ]; do
        tries=$((tries + 1))
        [ "$tries" -le 200 ] || fail "no free UDP ports found"
        p=$((p + 1))
        [ "$p" -lt 60000 ] || p=20000
        if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Hlun "sport = :$p" 2>/dev/null)" ]; then
            continue
        fi
        out="$out $p"
        n=$((n - 1))
    done
    echo "$out"
}

sock() {
    echo "$T/$1/ferryd.sock"
}

# f NAME ARGS...: the ferry CLI pointed at NAME's daemon.
f() {
    who=$1
    shift
    "$FERRY" --socket "$(sock "$who")" "$@"
}

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every 0.2 s until it
# succeeds; fail with WHAT after SECONDS.
wait_for() {
    secs=$1 what=$2
    shift 2
    i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -le $((secs * 5)) ] || fail "$what (waited ${secs} s)"
        sleep 0.2
    done
}

# start NAME PORT PEER_PORT...: a daemon in the foreground of a background
# job (so $! is its pid), logging at debug to $T/NAME.log. Sets PID_<NAME>
# and waits until `ferry id` answers.
start() {
    name=$1 port=$2
    shift 2
    peers=""
    for p in "$@"; do
        peers="$peers --peer 127.0.0.1:$p"
    done
    # shellcheck disable=SC2086
    "$FERRYD" --foreground --data-dir "$T/$name" --name "$name" --udp-port "$port" \
        --no-multicast $peers --log-level debug 2>>"$T/$name.log" &
    pid=$!
    STARTED="$STARTED $pid"
    eval "PID_$name=$pid"
    wait_for 15 "$name did not start" f "$name" id
}

# stop NAME: SIGTERM, and the daemon must exit 0 within 15 s.
stop() {
    eval "pid=\$PID_$1"
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le 150 ] || fail "$1 (pid $pid) did not exit within 15 s of SIGTERM"
        sleep 0.1
    done
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || fail "$1 exited with status $status after SIGTERM"
}

# wait_exit PID SECONDS: wait for a background job we started to end, at most
# SECONDS; sets EXIT_STATUS to its exit status.
wait_exit() {
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le $(($2 * 10)) ] || fail "pid $1 still running after $2 s"
        sleep 0.1
    done
    EXIT_STATUS=0
    wait "$1" || EXIT_STATUS=$?
}

# The JSON object of user WHO in NAME's directory (users are flat objects).
user_json() {
    f "$1" --json users | grep -o "{[^{}]*\"name\":\"$2\"[^{}]*}"
}

knows() {
    user_json "$1" "$2" >/dev/null
}

sees_online() {
    user_json "$1" "$2" | grep -q '"online":true'
}

sees_offline() {
    user_json "$1" "$2" | grep -q '"online":false'
}

# inbox_has NAME LINE: NAME's inbox, as `ferry inbox --all` prints it, has a
# line ending in LINE (e.g. "alice: hello").
inbox_has() {
    f "$1" inbox --all | grep -qF -- "$2"
}

# The message_id field of a one-line JSON result on stdin.
json_message_id() {
    grep -o '"message_id":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4
}

state_is() {
    f "$1" --json status "$2" | grep -q "\"state\":\"$3\""
}
