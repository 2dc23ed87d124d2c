#!/usr/bin/env bash
# `make stress`: the long form of the reliability scenarios: the 1000-cycle
# lifecycle and tests/sets/reliability with LOFI_STRESS=1 in one VM run,
# then crash durability with 10 hard resets. Prints each scenario's verdict, the figures table and
# "N passed, N failed"; exits non-zero on any failure. Takes a few hours
# under QEMU TCG.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib/common.sh"
# shellcheck source=scripts/lib/stages.sh
. "$LOFI_ROOT/scripts/lib/stages.sh"

export LOFI_STRESS=1
export LOFI_TEST_TIMEOUT=${LOFI_TEST_TIMEOUT:-3600}
start=$(date +%s)
KDIR=$("$LOFI_ROOT/scripts/provision.sh") || die "provisioning failed"
export KDIR

vm_out=$LOFI_ROOT/tests/out/stress
stage reliability "$LOFI_ROOT/tests/vm-run.sh" --timeout "${LOFI_VM_TIMEOUT:-14400}" \
	--out "$vm_out" lifecycle @reliability
stage crash-durability "$LOFI_ROOT/tests/crash-durability.sh" --out "$LOFI_ROOT/tests/out/stress-crash"

echo "make stress took $(($(date +%s) - start))s"
cat "$vm_out/figures" "$LOFI_ROOT/tests/out/stress-crash/crash-check/figures" >"$LOFI_ROOT/tests/out/stress-figures" 2>/dev/null
print_figures "$LOFI_ROOT/tests/out/stress-figures"
stages_summary
