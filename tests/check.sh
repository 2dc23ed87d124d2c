#!/usr/bin/env bash
# `make check`: every test. Host checks, the VM suites against the real
# module (KUnit included), lofiadm with it and the short form of the
# reliability scenarios (crash durability included), the data path's
# tests, the benchmark's smoke form, the in-tree build proof, the
# install on Debian's own kernel (booted) and the runner's self-test.
# After the host checks, two lanes run side by side: the VM suites (one
# boot) and the stages with their own boots or builds.
# Ends with the figures of the reliability scenarios and one line
# "N passed, N failed" over all of them, and exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib/common.sh"
# shellcheck source=scripts/lib/stages.sh
. "$LOFI_ROOT/scripts/lib/stages.sh"

start=$(date +%s)
log "provisioning (toolchain and test kernel; cached in $LOFI_CACHE)"
KDIR=$("$LOFI_ROOT/scripts/provision.sh") || die "provisioning failed"
export KDIR
log "provisioned in $(($(date +%s) - start))s"

stage host-checks "$LOFI_ROOT/tests/host-checks.sh"

# Every VM stage loads one lofi.ko, built here and copied aside: the
# stages below run in two lanes side by side, and none may rebuild the
# module a running guest loads. (If the build fails, each VM stage tries
# its own and fails with the compiler's messages.)
frozen=$LOFI_ROOT/tests/out/check-module
rm -rf "$frozen"
if "$LOFI_ROOT/scripts/build-module.sh" >"$LOFI_CACHE/logs/check-module-build.log" 2>&1; then
	mkdir -p "$frozen"
	cp "$LOFI_ROOT/drivers/block/lofi/lofi.ko" "$frozen/lofi.ko"
	export LOFI_KO=$frozen/lofi.ko
fi
# The guest test programs likewise (each VM run would make them).
make -s -C "$LOFI_ROOT/tests/guest/prog" OUT="$LOFI_ROOT/tests/guest/prog/out" >"$LOFI_CACHE/logs/guest-prog-build.log" 2>&1 || true

# The second lane: the stages with their own boots or builds. The VM
# suites leave one of the two cores mostly idle (their tests are mostly
# one command after another), which these use.
other_stages() {
	stage intree-build "$LOFI_ROOT/scripts/intree-build.sh" --test
	# make install-distro in a Debian trixie environment, then Debian's
	# own Rust-enabled kernel booted with lofi installed (its rustc 1.85
	# builds lofi and lofiadm there).
	stage stock-kernel "$LOFI_ROOT/tests/distro/stock-kernel.sh"
	# Crash durability boots the guest once per hard reset (its own runs).
	stage crash-durability "$LOFI_ROOT/tests/crash-durability.sh" --out "$LOFI_ROOT/tests/out/crash"
	# The benchmark's ten-second form, so that `make bench` cannot rot
	# (its figures are not judged: timings are no test, least of all
	# beside another lane).
	stage bench-smoke "$LOFI_ROOT/scripts/bench.sh" --smoke
	stage runner-selftest "$LOFI_ROOT/tests/selftest.sh"
}
lane other other_stages

# One boot for all VM suites (a boot and shutdown cost most of a minute
# under TCG). The reliability scenarios run in their short form (make
# stress: long).
vm_out=$LOFI_ROOT/tests/out/check-vm
stage vm-tests "$LOFI_ROOT/tests/vm-run.sh" --timeout 3600 --out "$vm_out" \
	@foundation @driver @datapath @hardening @lofiadm @compressed demo @reliability
lanes_wait

echo "make check took $(($(date +%s) - start))s"
cat "$vm_out/figures" "$LOFI_ROOT/tests/out/crash/crash-check/figures" >"$LOFI_ROOT/tests/out/figures" 2>/dev/null
print_figures "$LOFI_ROOT/tests/out/figures"
stages_summary
