#!/usr/bin/env bash
# The last close of a device unmapped while open closes its backing file
# before close(2) returns: the file system holding the backing file can be
# unmounted at once.  Each round maps an image on an ext4 file system (on
# a loop device), opens /dev/lofi/N, unmaps it while open (detach at last
# close, or forced: alternate rounds), closes it and at once (no sleep, no
# retry) unmounts the backing file system: that umount must never fail
# with EBUSY.  udev's event rules are paused meanwhile (an open by a udev
# probe would make the test's close not the last one).
# Figure: rounds, EBUSY umounts (must be 0), by unmap kind.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

rounds=$(stress_or 16 100)

cleanup() {
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

ebusy=0
ebusy_cleanup=0
ebusy_force=0
for ((i = 1; i <= rounds; i++)); do
	if ((i % 2)); then mode=cleanup; else mode=force; fi
	bk_mounted || bk_mount
	dev=$("$map" map "$bk_mnt/image.img") || fail "round $i: map failed"
	wait_for 5 test -b "$dev" || fail "round $i: $dev did not appear"
	status=0
	out=$("$hard" close-umount "$dev" "$bk_mnt" "$mode") || status=$?
	case $status in
	0) ;;
	3)
		ebusy=$((ebusy + 1))
		if [ "$mode" = cleanup ]; then ebusy_cleanup=$((ebusy_cleanup + 1)); else ebusy_force=$((ebusy_force + 1)); fi
		if [ "$ebusy" -le 3 ]; then echo "round $i ($mode): $out right after the last close of $dev"; fi
		bk_umount_wait 10
		;;
	*) fail "round $i ($mode): close-umount failed (status $status): $out" ;;
	esac
done
echo "$rounds rounds: $ebusy umounts failed with EBUSY right after the last close ($ebusy_cleanup after unmap with cleanup, $ebusy_force after a forced unmap)"
figure hardening-close-sync rounds="$rounds" ebusy="$ebusy" ebusy-cleanup="$ebusy_cleanup" ebusy-force="$ebusy_force"

no_disks() { ! compgen -G '/sys/block/lofi*' >/dev/null; }
wait_for 10 no_disks || fail "lofi disks left after the rounds: $(echo /sys/block/lofi*)"
expect_eq "mappings after the rounds" "$("$map" list)" ""
[ "$ebusy" -eq 0 ] || fail "$ebusy of $rounds umounts of the backing file system failed with EBUSY right after the last close of the lofi device: the backing file was still open"
unload_lofi
echo "ok: $rounds rounds, the backing file closed by every last close"
