#!/usr/bin/env bash
# Self-test only: passes by itself but leaves a kernel WARNING in the log.
# The runner must fail the run for the log.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
insmod "$LOFI_ROOT/tests/selftest/lofi_fault.ko" warn=1 || fail "insmod lofi_fault warn=1"
rmmod lofi_fault || fail "rmmod lofi_fault"
