#!/usr/bin/env bash
# Self-test only: the kernel blocks this test forever in an uninterruptible
# wait (no per-test timeout can kill it). The runner's whole-run timeout
# must end the VM and report a hang.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
insmod "$LOFI_ROOT/tests/selftest/lofi_fault.ko" hang=1
fail "insmod lofi_fault hang=1 returned"
