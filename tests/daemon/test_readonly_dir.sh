#!/bin/sh
# A data directory that is not writable: a clear error, no corruption,
# nothing lost, and a normal start once it is writable again.
#
# Permission bits do not stop root, so as root the daemon under test runs
# as the unprivileged user "nobody" (setpriv), and separately, root itself
# meets a read-only bind mount in a private mount namespace (unshare -m).
# A part that cannot be set up here is skipped and says why; if neither
# can, the test exits 77.
#
# Part A (permission bits): alice runs with a writable directory, holds
# mail from bob and mail for bob, and then her directory (0500) and files
# (0400) are made read-only while she runs. Linux checks permissions when a
# file is opened, so a running daemon keeps writing through the files it
# has open: she keeps serving, and stops cleanly. Her next start must fail
# at once with an error naming the directory, changing no file; after
# `chmod u+w` she starts, and everything she acknowledged is delivered
# exactly once. Last, only her directory is made read-only (files
# writable): again a clear error, key and store unchanged.
#
# Part B (read-only file system): dave's directory is bind-mounted
# read-only; even root cannot write it. His start must fail with a clear
# error and change nothing; unmounted, he starts with his state intact.
#
# Not covered: a file system that turns read-only under a running daemon
# (ext4 errors=remount-ro). Remounting read-only is refused while files are
# open for writing, so it cannot be staged without a failing block device;
# a running daemon's failing writes are covered by test_disk_full.sh.
. "$(dirname "$0")/lib.sh" "$@"

UNPRIV=65534
set -- $($CTL ports 3)
PA=$1 PB=$2 PD=$3

# files_digest DIR: name, size and hash of every regular file of DIR.
files_digest() {
    (cd "$1" && find . -type f | sort | xargs sha256sum)
}

# state_digest DIR: hash of the key and the store file (the lock file
# holds a pid, SQLite's journal files come and go).
state_digest() {
    (cd "$1" && sha256sum identity.key ferry.db)
}

# start_fails NAME PORT WRAP...: start ferryd (through WRAP) on NAME's data
# dir, which must make it exit 1 within 15 s; its stderr in $T/NAME-ro.err.
start_fails() {
    name=$1 port=$2
    shift 2
    "$@" "$FERRYD" --foreground --data-dir "$T/$name" --name "$name" --udp-port "$port" \
        --no-multicast --peer "127.0.0.1:$PB" 2>"$T/$name-ro.err" &
    pid=$!
    STARTED="$STARTED $pid"
    wait_pid "$pid" 15
    [ "$WAITED" -eq 1 ] || fail "$name started on a read-only directory: exit $WAITED, $(cat "$T/$name-ro.err")"
    grep -q "/$name/" "$T/$name-ro.err" || fail "the error does not name the directory: $(cat "$T/$name-ro.err")"
    echo "$name on a read-only directory: exit 1, \"$(grep -m1 error "$T/$name-ro.err" | sed 's/.*error: //')\""
}

ran=""
skipped=""

# ---------------------------------------------------------------- part A
as_user=""
reason_a=""
if [ "$(id -u)" -eq 0 ]; then
    if command -v setpriv >/dev/null 2>&1 &&
        setpriv --reuid=$UNPRIV --regid=$UNPRIV --clear-groups true 2>/dev/null; then
        as_user="setpriv --reuid=$UNPRIV --regid=$UNPRIV --clear-groups"
    else
        reason_a="running as root and cannot switch to uid $UNPRIV (no working setpriv)"
    fi
fi

if [ -z "$reason_a" ]; then
    chmod 0711 "$T" # the unprivileged daemon must reach its directory
    mkdir "$T/alice"
    [ -z "$as_user" ] || chown "$UNPRIV:$UNPRIV" "$T/alice"
    chmod 0700 "$T/alice"
    start bob "$PB" "$PA" "$PD"
    WRAP=$as_user
    start alice "$PA" "$PB"
    WRAP=""
    $CTL wait-user "$(sock alice)" bob 20
    $CTL wait-user "$(sock bob)" alice 20
    : >"$T/to-alice"
    $CTL flood-texts "$(sock bob)" alice 3 to-alice "$T/to-alice" >/dev/null
    $CTL check-texts "$(sock alice)" "$T/to-alice" to-alice 20 >/dev/null
    stop bob
    : >"$T/to-bob"
    $CTL flood-texts "$(sock alice)" bob 3 before-ro "$T/to-bob" >/dev/null

    # Read-only while she runs.
    find "$T/alice" -mindepth 1 -exec chmod 0400 {} +
    chmod 0500 "$T/alice"
    if $as_user sh -c "echo x >'$T/alice/probe'" 2>/dev/null; then
        fail "the data directory is still writable for the daemon's user: the test proves nothing"
    fi
    $CTL flood-texts "$(sock alice)" bob 3 during-ro "$T/to-bob" >"$T/during"
    $CTL get "$(sock alice)" id name >/dev/null
    echo "alice's directory made read-only while she runs: she accepted $(cat "$T/during") of 3" \
        "sends after it (her files stay open for writing), and serves on"
    stop alice
    before=$(files_digest "$T/alice")

    start_fails alice "$PA" $as_user
    after=$(files_digest "$T/alice")
    [ "$before" = "$after" ] || fail "the failed start changed the data directory"
    grep -Eq "Permission denied|writable" "$T/alice-ro.err" || fail "the error does not say why"

    chmod u+w "$T/alice"
    find "$T/alice" -mindepth 1 -exec chmod u+w {} +
    WRAP=$as_user
    start alice "$PA" "$PB"
    WRAP=""
    start bob "$PB" "$PA" "$PD"
    $CTL check-texts "$(sock bob)" "$T/to-bob" "" 60
    $CTL check-texts "$(sock alice)" "$T/to-alice" to-alice 5 >/dev/null
    stop alice
    stop bob
    # Only the directory read-only, the files writable (the store then
    # cannot create its journal files): a clear error, state unchanged.
    chmod 0500 "$T/alice"
    before=$(state_digest "$T/alice")
    start_fails alice "$PA" $as_user
    grep -Eq "writable" "$T/alice-ro.err" || fail "the error does not say why"
    [ "$before" = "$(state_digest "$T/alice")" ] || fail "the failed start changed the store or key"
    chmod 0700 "$T/alice"
    $CTL db-check "$T/alice/ferry.db" >/dev/null
    echo "writable again: alice started, bob got all she had acknowledged, her inbox is" \
        "intact, and her store passes SQLite's integrity check"
    ran="$ran A"
else
    skipped="$skipped; part A (permission bits): $reason_a"
fi

# ---------------------------------------------------------------- part B
reason_b=""
if [ "$(id -u)" -ne 0 ]; then
    reason_b="needs root for a private mount namespace"
elif ! command -v unshare >/dev/null 2>&1; then
    reason_b="no unshare"
else
    mkdir -p "$T/probe-ro"
    if ! unshare -m --propagation private sh -c \
        "mount --bind '$T/probe-ro' '$T/probe-ro' && mount -o remount,bind,ro '$T/probe-ro' &&
         ! touch '$T/probe-ro/x' 2>/dev/null" 2>/dev/null; then
        reason_b="cannot make a read-only bind mount here (no CAP_SYS_ADMIN or no mount namespaces)"
    fi
fi

if [ -z "$reason_b" ]; then
    cat >"$T/rowrap.sh" <<'EOF'
# In a private mount namespace: bind the directory $1 over itself
# read-only, prove that even root cannot write it, then run the rest.
set -e
dir=$1
shift
mount --bind "$dir" "$dir"
mount -o remount,bind,ro "$dir"
if touch "$dir/probe" 2>/dev/null; then
    echo "rowrap: $dir is writable after the read-only mount" >&2
    exit 99
fi
exec "$@"
EOF
    start bob "$PB" "$PA" "$PD"
    start dave "$PD" "$PB"
    $CTL wait-user "$(sock dave)" bob 20
    mid=$($CTL send "$(sock dave)" bob "from dave")
    $CTL wait-status "$(sock dave)" "$mid" delivered 20
    stop bob
    mid2=$($CTL send "$(sock dave)" bob "queued at dave")
    stop dave
    before=$(files_digest "$T/dave")

    start_fails dave "$PD" unshare -m --propagation private sh "$T/rowrap.sh" "$T/dave"
    grep -q "Read-only file system" "$T/dave-ro.err" || fail "the error does not say why"
    after=$(files_digest "$T/dave")
    [ "$before" = "$after" ] || fail "the failed start changed dave's directory"

    start dave "$PD" "$PB"
    $CTL wait-status "$(sock dave)" "$mid" delivered 5
    start bob "$PB" "$PA" "$PD"
    echo "$mid2" >"$T/want-dave"
    $CTL wait-inbox "$(sock bob)" "$T/want-dave" 30
    $CTL wait-status "$(sock dave)" "$mid2" delivered 30
    stop dave
    stop bob
    $CTL db-check "$T/dave/ferry.db" >/dev/null
    echo "after the read-only mount: dave started with his state, his queued message was" \
        "delivered, and his store passes SQLite's integrity check"
    ran="$ran B"
else
    skipped="$skipped; part B (read-only mount): $reason_b"
fi

if [ -z "$ran" ]; then
    echo "SKIP: nothing could be made read-only here${skipped}"
    exit 77
fi
[ -z "$skipped" ] || echo "not run here${skipped}"
echo "PASS (parts:$ran)"
