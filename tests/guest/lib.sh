# shellcheck shell=bash
# Helpers for guest tests.  Each test is a bash script run as root in the
# VM; it exits 0 to pass, anything else to fail, printing why.
#
# Environment set by tests/guest/harness.sh:
#   LOFI_KO       the lofi.ko under test
#   LOFI_ROOT     the repository (read-only in the guest)
#   LOFI_RESULTS  a writable directory shared with the host
#   LOFI_SCRATCH  a writable scratch directory in the guest (tmpfs)
#   LOFI_STRESS   1 for the long form of the reliability scenarios
#                 (make stress), 0 for the short form (make check)

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

# The test programs of tests/guest/prog, built on the host by the VM runner.
prog_dir=${LOFI_PROG_DIR:-$LOFI_ROOT/tests/guest/prog/out}
# need_progs PATH...: fail unless each test program is there.
need_progs() {
	local p
	for p in "$@"; do
		[ -x "$p" ] || fail "$p missing: the VM runner builds it on the host (make -C tests/guest/prog OUT=$prog_dir)"
	done
}

# need_prepared FILE...: files the test's "# host-prepare:" command made on
# the host before the boot, in $LOFI_PREP (see tests/vm-run.sh).
need_prepared() {
	local f
	[ -n "${LOFI_PREP:-}" ] && [ -d "$LOFI_PREP" ] || fail "no host preparation in ${LOFI_PREP:-LOFI_PREP (unset)}: it failed (${LOFI_PREP:-}.log), or the test ran outside tests/vm-run.sh"
	for f in "$@"; do
		[ -f "$LOFI_PREP/$f" ] || fail "$LOFI_PREP/$f missing: the host preparation did not make it"
	done
}

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

# figure SCENARIO KEY=VALUE...: report a measured figure of a reliability
# scenario, e.g. `figure ioctl-fuzz calls=100000 unexpected=0`. The host
# prints every figure of a run in one table after the verdicts.
figure() {
	local scenario=$1
	shift
	echo "FIGURE $scenario $*"
	echo "$scenario $*" >>"$LOFI_RESULTS/figures"
}

# stress_or SHORT LONG: the value for the current form (LOFI_STRESS).
stress_or() {
	if [ "${LOFI_STRESS:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi
}

# host_delete NAME: have the host delete $LOFI_RESULTS/NAME (the output
# directory is shared with the host over 9p), as another machine deletes
# a file on a network filesystem; waits up to 10 s for it to be done.
host_delete() {
	rm -f "$LOFI_RESULTS/host-delete.done"
	echo "$1" >"$LOFI_RESULTS/host-delete.tmp"
	mv "$LOFI_RESULTS/host-delete.tmp" "$LOFI_RESULTS/host-delete"
	wait_for 10 test -f "$LOFI_RESULTS/host-delete.done" || fail "the host did not delete $1"
	grep -q '^deleted: ' "$LOFI_RESULTS/host-delete.done" || fail "the host refused to delete $1"
}

# minor_of DEV: N of the node /dev/lofiN or of its link /dev/lofi/N.
minor_of() {
	local n=${1#/dev/lofi}
	echo "${n#/}"
}

# result FILE KEY: the value of KEY in the "RESULT key=value..." line a
# test program wrote to FILE.
result() {
	sed -n 's/^RESULT .*\<'"$2"'=\([^ ]*\).*/\1/p' "$1"
}

# lofi_teardown: for a test's EXIT trap: force every mapping away and
# unload lofi if it is loaded, ignoring errors (the test has failed).
lofi_teardown() {
	set +e
	if lofi_loaded; then
		"${LOFI_PROG_DIR:-$LOFI_ROOT/tests/guest/prog/out}/lofi_map" unmap-all force >/dev/null 2>&1
		sleep 1
		rmmod lofi 2>/dev/null
	fi
	return 0
}
