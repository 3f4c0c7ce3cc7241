#!/bin/sh
# registered.sh DIR FILE...: fails, naming them, if a test_*.c below DIR
# is not among the FILEs (paths relative to DIR) that tests/meson.build
# registers, or if a FILE is missing. Run when meson configures and as
# the test `registered`, so that a suite added without registering it
# cannot pass unseen.
set -eu
dir=$1
shift
list=$(mktemp)
trap 'rm -f "$list"' EXIT
for f in "$@"; do
    printf '%s\n' "$f"
done | sort -u > "$list"
status=0
for f in $(cd "$dir" && find . -name 'test_*.c' | sed 's|^\./||' | sort); do
    if ! grep -qxF "$f" "$list"; then
        echo "tests/$f is not registered in tests/meson.build" >&2
        status=1
    fi
done
while read -r f; do
    if [ ! -f "$dir/$f" ]; then
        echo "tests/meson.build registers tests/$f, which does not exist" >&2
        status=1
    fi
done < "$list"
exit $status
