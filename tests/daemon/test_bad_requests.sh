#!/bin/sh
# (b) Malformed JSON, non-objects, unknown commands and oversized lines get
# the documented error replies; the connection and the daemon keep serving.
. "$(dirname "$0")/lib.sh" "$@"

set -- $($CTL ports 2)
start solo "$1" "$2" # a peer nobody listens on: UDP wants somewhere to send
$CTL bad-requests "$(sock solo)"
# A fresh connection still works, and the daemon did not log a crash.
$CTL get "$(sock solo)" id name >/dev/null
stop solo
echo "PASS"
