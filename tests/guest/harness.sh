#!/usr/bin/env bash
# Runs inside the VM (started by tests/vm-run.sh): runs the named guest
# tests one after another, each with a time limit, and leaves for the host:
#   $LOFI_RESULTS/results    one line per test: "PASS name" or "FAIL name why"
#   $LOFI_RESULTS/NAME.log   each test's output
#   $LOFI_RESULTS/dmesg.log  the kernel log after the last test
#   $LOFI_RESULTS/done       written last: the guest finished normally
#
# usage: harness.sh RESULTS_DIR TEST...
set -uo pipefail

LOFI_RESULTS=$1
shift
LOFI_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LOFI_KO=${LOFI_KO:-$LOFI_ROOT/drivers/block/lofi/lofi.ko}
LOFI_PROG_DIR=${LOFI_PROG_DIR:-$LOFI_ROOT/tests/guest/prog/out}
LOFI_STRESS=${LOFI_STRESS:-0}
TEST_TIMEOUT=${LOFI_TEST_TIMEOUT:-300}
export LOFI_RESULTS LOFI_ROOT LOFI_KO LOFI_PROG_DIR LOFI_STRESS

echo "guest: $(uname -r), $(nproc) cpus, tests: $*" >"$LOFI_RESULTS/guest-info"
for name in "$@"; do
	script=$LOFI_ROOT/tests/guest/$name.sh
	[ -f "$script" ] || script=$LOFI_ROOT/tests/selftest/guest/$name.sh
	LOFI_SCRATCH=$(mktemp -d "/tmp/lofi-$name.XXXXXX")
	export LOFI_SCRATCH
	echo "=== $name" >/dev/kmsg
	if [ ! -f "$script" ]; then
		echo "FAIL $name no such test" >>"$LOFI_RESULTS/results"
		continue
	fi
	(cd "$LOFI_SCRATCH" && timeout -k 5 "$TEST_TIMEOUT" bash "$script") >"$LOFI_RESULTS/$name.log" 2>&1
	status=$?
	if [ $status -eq 0 ]; then
		echo "PASS $name" >>"$LOFI_RESULTS/results"
	elif [ $status -eq 124 ] || [ $status -eq 137 ]; then
		echo "FAIL $name timed out after ${TEST_TIMEOUT}s" >>"$LOFI_RESULTS/results"
	else
		echo "FAIL $name exit status $status: $(grep -m1 '^FAIL' "$LOFI_RESULTS/$name.log" || tail -n 1 "$LOFI_RESULTS/$name.log")" >>"$LOFI_RESULTS/results"
	fi
	rm -rf "$LOFI_SCRATCH"
done
dmesg >"$LOFI_RESULTS/dmesg.log"
sync
touch "$LOFI_RESULTS/done"
