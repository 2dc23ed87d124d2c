# shellcheck shell=bash
# Helpers for guest tests.  Each test is a bash script run as root in the
# VM; it exits 0 to pass, anything else to fail, printing why.
#
# Environment set by tests/guest/harness.sh:
#   LOFI_KO       the lofi.ko under test
#   LOFI_ROOT     the repository (read-only in the guest)
#   LOFI_RESULTS  a writable directory shared with the host
#   LOFI_SCRATCH  a writable scratch directory in the guest (tmpfs)

set -euo pipefail

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

lofi_loaded() { grep -q '^lofi ' /proc/modules; }

load_lofi() {
	insmod "$LOFI_KO" "$@" || fail "insmod $LOFI_KO failed"
	lofi_loaded || fail "lofi is not in /proc/modules after insmod"
}

unload_lofi() {
	rmmod lofi || fail "rmmod lofi failed"
	! lofi_loaded || fail "lofi is still in /proc/modules after rmmod"
}

# wait_for TIMEOUT_SECONDS CMD...: poll until CMD succeeds.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
