#!/usr/bin/env bash
# Self-test only: a guest test that passes but leaves lofi loaded with a
# mapping, as one killed by its time limit does. The harness must unload
# it, report this test as failed, and let the next test load lofi.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
load_lofi
truncate -s 1M leftover.img
"$LOFI_PROG_DIR/lofi_map" map "$PWD/leftover.img" >/dev/null || fail "map failed"
echo "ok: lofi left loaded with a mapping"
