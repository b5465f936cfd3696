# Helpers for the simulator tests, sourced by each driver with SIM set to the
# ferry-sim binary. Results go to a private temporary directory.
: "${SIM:?usage: $0 path/to/ferry-sim}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# sim_json NAME ARGS...: run ferry-sim ARGS --json into $TMP/NAME. A non-zero
# exit (an invariant violation, a bad flag) fails the test, with its stderr.
sim_json() {
    name=$1
    shift
    echo "run: ferry-sim $* --json"
    if ! "$SIM" "$@" --json >"$TMP/$name" 2>"$TMP/$name.err"; then
        echo "FAIL: ferry-sim exited non-zero:"
        tail -n 20 "$TMP/$name.err"
        exit 1
    fi
}

# check DESCRIPTION EXPRESSION: a Python expression over j(NAME), the JSON
# object of run NAME; H(n) is the n-th harmonic number.
check() {
    if ! python3 - "$TMP" "$2" <<'PY'
import json, os, sys
tmp, expr = sys.argv[1], sys.argv[2]
def j(name):
    with open(os.path.join(tmp, name)) as f:
        return json.load(f)
def H(n):
    return sum(1.0 / k for k in range(1, n + 1))
sys.exit(0 if eval(expr) else 1)
PY
    then
        echo "FAIL: $1"
        echo "  expression: $2"
        exit 1
    fi
    echo "ok: $1"
}

# show NAME KEY...: print some figures of a run, for the test log.
show() {
    python3 - "$TMP/$1" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("  " + sys.argv[2] + ": " + ", ".join("%s=%s" % (k, d[k]) for k in sys.argv[3:]))
PY
}
