#!/bin/sh
# Static checks on the project's own C code: cppcheck, and a ban on the
# unbounded string functions (use snprintf, memcpy with a checked length,
# strtol/strtoul with error checks).
set -e
cd "$(dirname "$0")/.."
src=$(git ls-files '*.c' '*.h' 2>/dev/null | grep -E '^(core|transports|platform|tools)/' || true)
[ -n "$src" ] || src=$(find core transports platform tools -name '*.[ch]')
status=0
banned=$(grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)\s*\(' $src || true)
if [ -n "$banned" ]; then
    echo "banned functions:"; echo "$banned"; status=1
fi
c_files=$(echo "$src" | grep '\.c$')
if ! cppcheck --enable=warning,portability,performance --std=c11 --quiet --inline-suppr \
        --error-exitcode=1 -D__linux__ -I core $c_files; then
    status=1
fi
[ $status -eq 0 ] && echo "lint: $(echo "$c_files" | wc -l) files clean (cppcheck, banned functions)"
exit $status
