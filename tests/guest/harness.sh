#!/usr/bin/env bash
# Runs inside the VM (started by tests/vm-run.sh): runs the named guest
# tests one after another, each with a time limit (LOFI_TEST_TIMEOUT, or the
# test's own "# time-limit: SECONDS" line if longer), and leaves for the host:
#   $LOFI_RESULTS/results    one line per test: "PASS name" or "FAIL name why"
#   $LOFI_RESULTS/NAME.log   each test's output
#   $LOFI_RESULTS/times      one line per test: "NAME SECONDS" (wall time)
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

# unload_leftover: unmounts what is mounted from lofi disks, forces every
# mapping away and unloads lofi, waiting up to 30 s for the last closes.
unload_leftover() {
	local mnt
	awk '$1 ~ /^\/dev\/lofi/ {print $2}' /proc/mounts | sort -r | while read -r mnt; do
		umount -l "$mnt" 2>/dev/null
	done
	"$LOFI_PROG_DIR/lofi_map" unmap-all force >/dev/null 2>&1
	for _ in $(seq 30); do
		rmmod lofi 2>/dev/null && return 0
		sleep 1
	done
	return 1
}

# fail_after NAME WHY: test NAME, which passed, fails after all, for WHY
# (something it left behind that would make later tests fail).
fail_after() {
	grep -q "^PASS $1\$" "$LOFI_RESULTS/results" &&
		sed -i "s|^PASS $1\$|FAIL $1 $2|" "$LOFI_RESULTS/results"
	echo "harness: $1 $2" >>"$LOFI_RESULTS/$1.log"
}

# left_at_disk_names: what is in /dev under a lofi disk's or partition's
# name (lofiN, lofiNpM), as "PATH (TYPE)" lines. With lofi unloaded no
# lofi disk exists, so anything there was made by a test: a regular file
# that `dd of=/dev/lofiN` made after the disk went, say. devtmpfs does not
# replace what it did not make, so the next disk of that name would get
# no node and every later test would fail on it.
disk_names='lofi[0-9]*'
left_at_disk_names() {
	find /dev -maxdepth 1 -name "$disk_names" -printf '%p (%y)\n' |
		sed 's/(f)$/(a regular file)/; s/(b)$/(a block device node)/; s/(c)$/(a character device node)/;
			s/(l)$/(a symbolic link)/; s/(d)$/(a directory)/'
}

echo "guest: $(uname -r), $(nproc) cpus, tests: $*" >"$LOFI_RESULTS/guest-info"
for name in "$@"; do
	script=$LOFI_ROOT/tests/guest/$name.sh
	[ -f "$script" ] || script=$LOFI_ROOT/tests/selftest/guest/$name.sh
	LOFI_SCRATCH=$(mktemp -d "/tmp/lofi-$name.XXXXXX")
	# What the test's "# host-prepare:" command made (tests/vm-run.sh).
	LOFI_PREP=$LOFI_RESULTS/prep/$name
	export LOFI_SCRATCH LOFI_PREP
	echo "=== $name" >/dev/kmsg
	if [ ! -f "$script" ]; then
		echo "FAIL $name no such test" >>"$LOFI_RESULTS/results"
		continue
	fi
	# A test may need longer than the default: a "# time-limit: SECONDS"
	# line in its header says so (the larger of the two applies).
	limit=$(sed -n 's/^# time-limit: \([0-9][0-9]*\)$/\1/p' "$script" | head -n 1)
	[ -n "$limit" ] && [ "$limit" -gt "$TEST_TIMEOUT" ] || limit=$TEST_TIMEOUT
	t0=$(date +%s)
	(cd "$LOFI_SCRATCH" && timeout -k 5 "$limit" bash "$script") >"$LOFI_RESULTS/$name.log" 2>&1
	status=$?
	echo "$name $(($(date +%s) - t0))" >>"$LOFI_RESULTS/times"
	if [ $status -eq 0 ]; then
		echo "PASS $name" >>"$LOFI_RESULTS/results"
	elif [ $status -eq 124 ] || [ $status -eq 137 ]; then
		echo "FAIL $name timed out after ${limit}s" >>"$LOFI_RESULTS/results"
	else
		echo "FAIL $name exit status $status: $(grep -m1 '^FAIL' "$LOFI_RESULTS/$name.log" || tail -n 1 "$LOFI_RESULTS/$name.log")" >>"$LOFI_RESULTS/results"
	fi
	if grep -q '^lofi ' /proc/modules; then
		# A test that timed out (its EXIT trap killed with it) or forgot
		# leaves lofi loaded, and every later insmod would fail: take it
		# away here, so that each test starts from an unloaded module.
		if unload_leftover; then
			why="left lofi loaded (unloaded by the harness)"
		else
			why="left lofi loaded, and the harness could not unload it"
		fi
		fail_after "$name" "$why"
	fi
	if ! grep -q '^lofi ' /proc/modules; then
		left=$(left_at_disk_names)
		if [ -n "$left" ]; then
			fail_after "$name" "left $(echo "$left" | paste -sd, - | sed 's/,/, /g') behind (removed by the harness)"
			find /dev -maxdepth 1 -name "$disk_names" -exec rm -rf {} +
		fi
	fi
	rm -rf "$LOFI_SCRATCH"
done
dmesg >"$LOFI_RESULTS/dmesg.log"
sync
touch "$LOFI_RESULTS/done"
