#!/usr/bin/env bash
# DKIO_DEV_GONE means the backing file is closed.  A DKIOCSTATE waiter on
# /dev/lofi/N (lofi_hardening gone-umount) unmounts the ext4 file system
# holding the backing file the moment it is told DKIO_DEV_GONE, with
# /dev/lofi/N still open (by the waiter itself): that umount must never
# fail with EBUSY.
#  - plain: a forced unmap of the device, held open by the waiter;
#  - race: a forced unmap racing the close of another opener's descriptor
#    (a process holding the device open is killed at the same moment).
# In every other round the waiter runs at real-time priority on the CPU of
# the process doing the forced unmap, so that it runs the instant it is
# woken, before that process is back in user space.  udev's event rules
# are paused meanwhile (nobody else opens the device).
# Figure: rounds, EBUSY umounts (must be 0).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

rounds=$(stress_or 10 200)

waiter_pid=
holder_pid=
unmapper_pid=
cleanup() {
	set +e
	for p in $waiter_pid $holder_pid $unmapper_pid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	lofi_teardown
	udev_resume
	bk_teardown
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
udev_pause
bk_setup 64M
truncate -s 8M "$bk_mnt/image.img"

# holds_open PID DEV: PID has DEV open as its descriptor 3.
holds_open() { [ "$(readlink "/proc/$1/fd/3" 2>/dev/null)" = "$2" ]; }

declare -A ebusy=([plain]=0 [race]=0 [pinned]=0 [free]=0)
declare -A done_rounds=([plain]=0 [race]=0 [pinned]=0 [free]=0)
for ((i = 1; i <= rounds; i++)); do
	if ((i % 2)); then kind=plain; else kind=race; fi
	# Rounds 1, 2, 5, 6, ...: the waiter pinned next to the unmap, at RT priority.
	pinned=$((((i - 1) / 2) % 2 == 0))
	bk_mounted || bk_mount
	dev=$("$map" map "$bk_mnt/image.img") || fail "round $i: map failed"
	n=$(minor_of "$dev")
	wait_for 5 test -b "$dev" || fail "round $i: $dev did not appear"

	if [ "$kind" = race ]; then
		sleep 600 3<"$dev" &
		holder_pid=$!
		wait_for 5 holds_open "$holder_pid" "$dev" || fail "round $i: the holder did not open $dev"
	fi
	if [ "$pinned" = 1 ]; then
		chrt -f 50 taskset -c 0 "$hard" gone-umount "$dev" "$bk_mnt" >waiter.out 2>&1 &
	else
		"$hard" gone-umount "$dev" "$bk_mnt" >waiter.out 2>&1 &
	fi
	waiter_pid=$!
	wait_for 10 grep -q '^waiting: DKIO_INSERTED$' waiter.out || fail "round $i: the DKIOCSTATE waiter did not start: $(cat waiter.out)"

	if [ "$pinned" = 1 ]; then
		taskset -c 0 "$hard" unmap-once "$n" force >unmap.out 2>&1 &
	else
		"$hard" unmap-once "$n" force >unmap.out 2>&1 &
	fi
	unmapper_pid=$!
	if [ "$kind" = race ]; then
		kill -KILL "$holder_pid"
		wait "$holder_pid" 2>/dev/null || true
		holder_pid=
	fi
	status=0
	wait_exit 30 "$unmapper_pid" || fail "round $i: the forced unmap did not return within 30 s"
	wait "$unmapper_pid" || status=$?
	unmapper_pid=
	[ "$status" -eq 0 ] || fail "round $i ($kind): the forced unmap failed: $(cat unmap.out)"

	status=0
	wait_exit 30 "$waiter_pid" || fail "round $i: the waiter did not finish within 30 s of the forced unmap: $(cat waiter.out)"
	wait "$waiter_pid" || status=$?
	waiter_pid=
	if [ "$pinned" = 1 ]; then sched=pinned; else sched=free; fi
	done_rounds[$kind]=$((done_rounds[$kind] + 1))
	done_rounds[$sched]=$((done_rounds[$sched] + 1))
	case $status in
	0) grep -q '^DKIO_DEV_GONE umount ok$' waiter.out || fail "round $i: unexpected waiter output: $(cat waiter.out)" ;;
	3)
		ebusy[$kind]=$((ebusy[$kind] + 1))
		ebusy[$sched]=$((ebusy[$sched] + 1))
		if [ $((ebusy[plain] + ebusy[race])) -le 3 ]; then echo "round $i ($kind, pinned=$pinned): $(tail -n 1 waiter.out)"; fi
		bk_umount_wait 10
		;;
	*) fail "round $i ($kind): the waiter failed (status $status): $(cat waiter.out)" ;;
	esac
	# The waiter's exit was the last close: the disk goes.
	within 10 test ! -e "/sys/block/lofi$n" || fail "round $i: /sys/block/lofi$n still exists after the last close"
done

total=$((ebusy[plain] + ebusy[race]))
echo "plain: ${ebusy[plain]} of ${done_rounds[plain]} umounts right after DKIO_DEV_GONE failed with EBUSY"
echo "race:  ${ebusy[race]} of ${done_rounds[race]} umounts right after DKIO_DEV_GONE failed with EBUSY"
echo "(waiter at RT priority on the unmapping CPU: ${ebusy[pinned]} of ${done_rounds[pinned]}; unpinned: ${ebusy[free]} of ${done_rounds[free]})"
figure hardening-devgone-closed rounds="$rounds" ebusy="$total" ebusy-plain="${ebusy[plain]}" ebusy-race="${ebusy[race]}" ebusy-pinned="${ebusy[pinned]}" ebusy-unpinned="${ebusy[free]}"
expect_eq "mappings after the rounds" "$("$map" list)" ""
[ "$total" -eq 0 ] || fail "$total of $rounds umounts of the backing file system failed with EBUSY right after DKIO_DEV_GONE (plain ${ebusy[plain]}, race ${ebusy[race]}): the backing file was still open"
unload_lofi
echo "ok: $rounds rounds, the backing file closed whenever DKIO_DEV_GONE was reported"
