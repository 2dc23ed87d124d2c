#!/usr/bin/env bash
# lofi's KUnit suites run when the module loads; every suite and every case
# must report ok.  The KTAP output is kept in $LOFI_RESULTS/kunit.ktap.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

suites="lofi_compressed_format lofi_geometry lofi_io_mode lofi_numbers lofi_segments"
dmesg -C
load_lofi
unload_lofi
dmesg | sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' >kunit.log
for s in $suites; do
	grep -q "# Subtest: $s\$" kunit.log || fail "KUnit suite $s did not run"
	grep -qE "^ *ok [0-9]+ $s\$" kunit.log || fail "KUnit suite $s did not pass"
	grep -E "# $s: pass:[0-9]+ fail:0 skip:0 total:[0-9]+" kunit.log || fail "KUnit suite $s has failed or skipped cases"
done
! grep -E '^ *not ok' kunit.log || fail "a KUnit case failed"
cp kunit.log "$LOFI_RESULTS/kunit-lofi.log"
