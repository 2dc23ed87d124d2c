#!/usr/bin/env bash
# The VM runner's self-test: shows that tests/vm-run.sh reports a failing
# guest test, a test that leaves lofi loaded or a file at a disk's node
# name, a kernel warning in the guest log and a hung guest as failures.
# Each case boots a VM whose run must FAIL for the right reason (two
# boots: the hang needs its own).
# Prints a PASS/FAIL line per case and "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/../scripts/lib/common.sh"

passed=0
failed=0
# expect_failure NAME PATTERN [-e PATTERN...] [ENV=VALUE...] -- TEST...
# The run must fail and print a line matching every PATTERN.
expect_failure() {
	local name=$1 out status pattern missing=
	local patterns=("$2")
	shift 2
	local envs=()
	while [ "$1" != -- ]; do
		if [ "$1" = -e ]; then
			patterns+=("$2")
			shift
		else
			envs+=("$1")
		fi
		shift
	done
	shift
	out=$(env "${envs[@]}" "$LOFI_ROOT/tests/vm-run.sh" "$@" 2>&1)
	status=$?
	for pattern in "${patterns[@]}"; do
		grep -qE "$pattern" <<<"$out" || missing="$missing '$pattern'"
	done
	if [ $status -ne 0 ] && [ -z "$missing" ]; then
		echo "PASS selftest-$name (runner reported: $(grep -m1 -E "${patterns[0]}" <<<"$out"))"
		passed=$((passed + 1))
	else
		echo "FAIL selftest-$name: runner exit status $status, no line matching$missing in:"
		sed 's/^/    /' <<<"$out" | tail -n 30
		failed=$((failed + 1))
	fi
}

# One boot for the tests that fail on their own and for the kernel warning:
# the summary line proves that the log's verdict counts as a failure of
# its own (three tests pass, four verdicts fail). The tests after each
# leftover pass, so the harness took it away.
expect_failure failing-test-and-kernel-warning '^FAIL selftest-failing-test .*deliberate failure' \
	-e '^FAIL selftest-leftover-module left lofi loaded \(unloaded by the harness\)' \
	-e '^FAIL selftest-leftover-node left /dev/lofi1 \(a regular file\) behind \(removed by the harness\)' \
	-e '^PASS load-unload' -e '^PASS selftest-maps-lofi1' -e '^PASS selftest-kernel-warning' \
	-e '^FAIL kernel-log ' -e '^vm-run: 3 passed, 4 failed$' -- \
	selftest-failing-test selftest-leftover-module load-unload selftest-leftover-node selftest-maps-lofi1 \
	selftest-kernel-warning
expect_failure guest-hang '^FAIL vm guest timed out' LOFI_VM_TIMEOUT="${LOFI_SELFTEST_HANG_TIMEOUT:-50}" -- selftest-guest-hang

echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
