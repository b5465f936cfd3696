#!/bin/sh
# Installs the Debian packages ferry needs to build and test, if missing.
# Uses sudo when not root. Safe to run again: it does nothing when all are present.
set -e
PKGS="gcc make cmake pkg-config libsodium-dev libcmocka-dev libsqlite3-dev libinih-dev \
libcjson-dev libserialport-dev libbluetooth-dev clang cppcheck valgrind tmux iproute2 procps python3"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "ferry: installing missing packages:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q $missing
