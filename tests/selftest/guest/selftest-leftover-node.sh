#!/usr/bin/env bash
# Self-test only: a guest test that passes but leaves a regular file at
# the node name of a disk that went, as `dd of=/dev/lofi1` does once
# lofi1 is gone (without conv=nocreat). devtmpfs would not make the node
# of the next lofi1 over it; the harness must report this test as failed
# and remove the file, so that the next test's lofi1 gets its node.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
load_lofi
truncate -s 1M leftover.img
dev=$("$LOFI_PROG_DIR/lofi_map" map "$PWD/leftover.img") || fail "map failed"
expect_eq "the first mapping" "$dev" /dev/lofi1
"$LOFI_PROG_DIR/lofi_map" unmap "$dev" || fail "unmap failed"
wait_for 5 test ! -e /dev/lofi1 || fail "/dev/lofi1 stayed after the unmap"
dd if=/dev/zero of=/dev/lofi1 bs=4k count=1 status=none || fail "dd did not make a file at /dev/lofi1"
[ -f /dev/lofi1 ] || fail "/dev/lofi1 is not a regular file"
unload_lofi
echo "ok: /dev/lofi1 left as a regular file"
