# Shared by the ferryd tests; sourced, not run. Each test runs its daemons in
# its own temporary directory, on UDP ports of 127.0.0.1 picked free at the
# start, with multicast off and static peers only, so tests cannot hear each
# other. Only processes started here are ever signalled, by pid, and the
# EXIT trap kills any still running and removes the directory.
#
# Usage in a test:  . "$(dirname "$0")/lib.sh" "$@"   (argument: the ferryd binary)

set -eu

FERRYD=${1:?usage: $0 PATH-TO-FERRYD}
HERE=$(cd "$(dirname "$0")" && pwd)
CTL="python3 $HERE/ctl.py"
T=$(mktemp -d "${TMPDIR:-/tmp}/ferryd-test.XXXXXX")
STARTED=""

cleanup() {
    status=$?
    if [ "$status" -ne 0 ]; then
        # A failure: ask first, so daemons log their stop and helpers such
        # as the modem emulator print their counters into the logs below.
        for pid in $STARTED; do
            kill -TERM "$pid" 2>/dev/null || true
        done
        i=0
        while [ "$i" -lt 30 ]; do
            alive=""
            for pid in $STARTED; do
                kill -0 "$pid" 2>/dev/null && alive=1
            done
            [ -n "$alive" ] || break
            i=$((i + 1))
            sleep 0.1
        done
    fi
    for pid in $STARTED; do
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$T"/*.log; do
            [ -f "$log" ] || continue
            echo "--- $log (last 30 lines)" >&2
            tail -n 30 "$log" >&2
        done
    fi
    rm -rf "$T"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# start NAME PORT PEER_PORT...: a daemon in the foreground (so $! is its pid),
# logging at debug to $T/NAME.log. Sets PID_<NAME>. Waits until it answers.
# $WRAP, if set, is a command that execs the daemon (so the pid is the same);
# $FERRYD_ARGS, if set, adds options.
WRAP=""
start() {
    name=$1 port=$2
    shift 2
    peers=""
    for p in "$@"; do
        peers="$peers --peer 127.0.0.1:$p"
    done
    # shellcheck disable=SC2086
    $WRAP "$FERRYD" --foreground --data-dir "$T/$name" --name "$name" --udp-port "$port" \
        --no-multicast $peers --log-level debug ${FERRYD_ARGS:-} 2>>"$T/$name.log" &
    pid=$!
    STARTED="$STARTED $pid"
    eval "PID_$name=$pid"
    $CTL wait-ready "$T/$name/ferryd.sock" 15 || fail "$name did not start"
}

sock() {
    echo "$T/$1/ferryd.sock"
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

# crash NAME: SIGKILL, no chance to clean up.
crash() {
    eval "pid=\$PID_$1"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
}

# The rogue UDP peer of the adversarial tests (adversary.c), built next to
# ferryd; ctest passes its path in FE_ADVERSARY.
ADV=${FE_ADVERSARY:-$(dirname "$FERRYD")/daemon_adversary}

# need_adv: fail unless the adversary tool is there (a build problem, not
# something to skip).
need_adv() {
    [ -x "$ADV" ] || fail "no adversary tool at $ADV (build the daemon_adversary target)"
}

# wait_grep FILE PATTERN SECONDS: until a line of FILE matches PATTERN (grep -E).
wait_grep() {
    n_=0
    while ! grep -qE "$2" "$1" 2>/dev/null; do
        n_=$((n_ + 1))
        [ "$n_" -le $(($3 * 10)) ] || fail "nothing matching '$2' in $1 within $3 s"
        sleep 0.1
    done
}

# wait_pid PID SECONDS: until a process started here exits; its status in WAITED.
wait_pid() {
    n_=0
    while kill -0 "$1" 2>/dev/null; do
        n_=$((n_ + 1))
        [ "$n_" -le $(($2 * 10)) ] || fail "pid $1 still running after $2 s"
        sleep 0.1
    done
    WAITED=0
    wait "$1" || WAITED=$?
}

# wait_file FILE SECONDS: until FILE exists.
wait_file() {
    n_=0
    while [ ! -e "$1" ]; do
        n_=$((n_ + 1))
        [ "$n_" -le $(($2 * 10)) ] || fail "$1 did not appear within $2 s"
        sleep 0.1
    done
}
