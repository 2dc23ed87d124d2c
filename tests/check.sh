#!/usr/bin/env bash
# `make check`: every test. Host checks, the VM suites against the real
# module (KUnit included) and lofiadm with it, the in-tree build proof and
# the runner's self-test. Ends with one line "N passed, N failed" over all
# of them and exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib/common.sh"

start=$(date +%s)
log "provisioning (toolchain and test kernel; cached in $LOFI_CACHE)"
KDIR=$("$LOFI_ROOT/scripts/provision.sh") || die "provisioning failed"
export KDIR
log "provisioned in $(($(date +%s) - start))s"

total_pass=0
total_fail=0
# stage NAME CMD...: run one stage, streaming its output, and count its
# PASS/FAIL lines.
stage() {
	local name=$1 status p f t0 out
	shift
	t0=$(date +%s)
	out=$(mktemp)
	echo "=== $name"
	"$@" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	p=$(grep -cE '^PASS ' "$out")
	f=$(grep -cE '^FAIL ' "$out")
	rm -f "$out"
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name (exit status $status)"
		f=1
	fi
	echo "=== $name: $p passed, $f failed, $(($(date +%s) - t0))s"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

stage host-checks "$LOFI_ROOT/tests/host-checks.sh"
# One boot for all VM suites (a boot costs about a minute under TCG).
stage vm-tests "$LOFI_ROOT/tests/vm-run.sh" --timeout 2400 @foundation @driver @lofiadm demo
stage intree-build "$LOFI_ROOT/scripts/intree-build.sh" --test
stage runner-selftest "$LOFI_ROOT/tests/selftest.sh"

echo "make check took $(($(date +%s) - start))s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
