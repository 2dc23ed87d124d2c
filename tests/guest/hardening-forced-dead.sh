#!/usr/bin/env bash
# A forced unmap tells the block layer the disk is dead, so that a file
# system mounted on it learns at once: ext4 on /dev/lofi/N, mounted, is
# force-unmapped; then
#  - /sys/block/lofiN/size is unchanged: lofi sets back the capacity that
#    blk_mark_disk_dead zeroes, so that every access fails with EIO rather
#    than ending early (lofi_abi_test's forced_unmap case checks the EIO);
#  - creating a file in the mounted file system fails with EIO at once
#    (the file system was shut down), before any writeback;
#  - a write with fsync fails with EIO within 20 s;
#  - a "change" uevent for lofiN was sent (udevadm monitor --kernel).
# Then the file system unmounts and the disk goes at that last close.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

mnt=$PWD/mnt
mon_pid=
cleanup() {
	set +e
	[ -n "$mon_pid" ] && kill "$mon_pid" 2>/dev/null && wait "$mon_pid" 2>/dev/null
	mountpoint -q "$mnt" && { umount "$mnt" 2>/dev/null || umount -l "$mnt"; }
	lofi_teardown
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

truncate -s 64M "$PWD/fs.img"
dev=$("$map" map "$PWD/fs.img") || fail "map failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev did not appear"
mkfs.ext4 -q "$dev" || fail "mkfs.ext4 $dev failed"
mkdir -p "$mnt"
mount -t ext4 "$dev" "$mnt" || fail "mount $dev failed"
echo before >"$mnt/before"
sync
settle
size_before=$(cat "/sys/block/lofi$n/size")

udevadm monitor --kernel --subsystem-match=block --property >uevents.out 2>&1 &
mon_pid=$!
wait_for 10 grep -q '^monitor will print' uevents.out || fail "udevadm monitor did not start: $(cat uevents.out)"
sleep 0.5

"$map" unmap "$n" force || fail "forced unmap of the mounted $dev failed"
echo "forced unmap of $dev (mounted at $mnt) done"

size=$(cat "/sys/block/lofi$n/size" 2>&1)
echo "/sys/block/lofi$n/size: $size_before before, $size after the forced unmap"
[ "$size" = "$size_before" ] || bad "/sys/block/lofi$n/size reads '$size' after the forced unmap, want '$size_before' (unchanged)"

# No I/O needed: only a file system told of the dead disk refuses this.
if err=$(sh -c "echo x >'$mnt/created-after'" 2>&1); then
	bad "creating a file in the file system on the force-unmapped $dev succeeded: the file system was not told the disk is dead"
else
	echo "creating a file after the forced unmap: $err"
	case $err in *"Input/output error"*) ;; *) bad "creating a file after the forced unmap: want EIO, got: $err" ;; esac
fi

start=$(date +%s)
if err=$(timeout 30 dd if=/dev/zero of="$mnt/written-after" bs=4k count=16 conv=fsync status=none 2>&1); then
	bad "a write with fsync into the file system on the force-unmapped $dev succeeded"
else
	took=$(($(date +%s) - start))
	echo "a write with fsync after the forced unmap failed after ${took} s: $err"
	case $err in
	*"Input/output error"* | *"Read-only file system"*) ;;
	*) bad "a write with fsync after the forced unmap: want EIO, got: $err" ;;
	esac
	[ "$took" -le 20 ] || bad "a write with fsync after the forced unmap took ${took} s to fail"
fi

sleep 1
kill "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null || true
mon_pid=
echo "--- kernel uevents of block devices after the forced unmap:"
grep -E '^KERNEL\[' uevents.out || echo "(none)"
grep -qE "^KERNEL\[[0-9.]+\] +change +/devices/virtual/block/lofi$n \(block\)" uevents.out ||
	bad "no change uevent for lofi$n after the forced unmap"

umount "$mnt" 2>umount.err || {
	echo "umount: $(cat umount.err); unmounting lazily"
	umount -l "$mnt" || fail "umount -l $mnt failed"
}
wait_for 10 test ! -e "/sys/block/lofi$n" || fail "/sys/block/lofi$n still exists after the umount (the last close)"
expect_eq "mappings at the end" "$("$map" list)" ""
[ "$failures" -eq 0 ] || fail "$failures checks failed (see the FAIL lines above)"
unload_lofi
echo "ok: the force-unmapped disk is dead to the block layer and the mounted file system"
