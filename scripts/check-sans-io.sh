#!/bin/sh
# Fails if the core library references operating-system I/O or clocks.
# The core takes time and bytes as arguments; everything else is the platform's job.
lib="$1"
[ -f "$lib" ] || { echo "usage: $0 libferrycore.a" >&2; exit 2; }
banned='^(socket|connect|bind|send|sendto|recv|recvfrom|open|open64|openat|fopen|fopen64|read|write|close|clock_gettime|gettimeofday|time|sleep|usleep|nanosleep|poll|select|epoll_wait|printf|fprintf|puts|perror|exit|abort|getenv|system|fork|pthread_create)$'
bad=$(nm -u "$lib" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//' | sort -u | grep -E "$banned")
if [ -n "$bad" ]; then
    echo "core/ must be sans-I/O but references:" $bad
    exit 1
fi
echo "core is sans-I/O: no banned symbols in $(basename "$lib")"
