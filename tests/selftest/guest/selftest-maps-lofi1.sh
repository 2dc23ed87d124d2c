#!/usr/bin/env bash
# Self-test only: run after selftest-leftover-node, lofiadm maps lofi1 and
# finds its node, which it could not if the harness had left the file.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
load_lofi
truncate -s 1M a.img
out=$("$LOFIADM" -a a.img) || fail "lofiadm -a a.img failed: $out"
expect_eq "lofiadm -a a.img" "$out" /dev/lofi/1
[ -b /dev/lofi1 ] || fail "/dev/lofi1 is not a block device"
"$LOFIADM" -d /dev/lofi/1 || fail "lofiadm -d /dev/lofi/1 failed"
unload_lofi
echo "ok: lofi1 mapped with its node"
