#!/bin/sh
# Runs ferryd under valgrind's memcheck: any invalid access, use of
# uninitialised memory or definite leak makes ferryd exit 99, which the
# multi-process tests report as a failed daemon. Usage, e.g.:
#   FERRYD_REAL=build/bin/ferryd sh tests/daemon/test_two_daemons.sh scripts/valgrind-ferryd.sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --track-fds=no "${FERRYD_REAL:?set FERRYD_REAL to the ferryd binary}" "$@"
