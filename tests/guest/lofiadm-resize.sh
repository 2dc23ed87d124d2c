#!/usr/bin/env bash
# Capacity changes, as a user whose image is too small does: ext4 on a
# 64 MiB mapping is mounted and holds a file; the image grows by 64 MiB
# and `lofiadm --resize` gives the mounted device the new size at once
# (blockdev, sysfs, the fake geometry sfdisk reads, a change uevent with
# RESIZE=1); resize2fs grows the mounted file system, which then holds
# more than the old device could; after umount fsck is clean and the file
# is intact. A new size limit (--sizelimit with --resize), a resize by file
# name, and the refusals (a file that no longer holds the slice, a
# read-only mapping, an unmapped device) with their messages, the size
# unchanged.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

monitor=
cleanup() {
	[ -n "$monitor" ] && kill "$monitor" 2>/dev/null
	mountpoint -q mnt && umount mnt
	lofiadm_cleanup
}
trap cleanup EXIT

MiB=$((1 << 20))
load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
mkdir mnt

# geometry DEVICE: "cylinders heads sectors" as sfdisk -g reads them
# (HDIO_GETGEO).
geometry() {
	sfdisk -g "$1" | sed -E 's/.*: ([0-9]+) cylinders, ([0-9]+) heads, ([0-9]+) sectors.*/\1 \2 \3/'
}

echo "=== ext4 on a 64 MiB mapping, mounted"
truncate -s 64M disk.img
ok -a disk.img
dev=$OUT
n=$(minor_of "$dev")
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 $dev failed"
mount "$dev" mnt || fail "mount $dev failed"
head -c 4M /dev/urandom >ref
cp ref mnt/data
sync
expect_eq "geometry of 64 MiB" "$(geometry "$dev")" "218 20 30"
before=$(df -B1 --output=size mnt | tail -n 1)

echo "=== the image grows by 64 MiB; the mounted device follows"
udevadm monitor --kernel --property --subsystem-match=block >uevents 2>&1 &
monitor=$!
wait_for 10 grep -q '^monitor will print' uevents || fail "udevadm monitor did not start: $(cat uevents)"
sleep 0.5
truncate -s 128M disk.img
expect_eq "size before the resize" "$(blockdev --getsize64 "$dev")" $((64 * MiB))
ok --resize "$dev"
expect_eq "stdout of --resize" "$OUT" ""
expect_eq "blockdev --getsize64 after the resize" "$(blockdev --getsize64 "$dev")" $((128 * MiB))
expect_eq "/sys/block/lofi$n/size" "$(cat "/sys/block/lofi$n/size")" $((128 * MiB / 512))
expect_eq "geometry of 128 MiB" "$(geometry "$dev")" "436 20 30"
wait_for 10 grep -q '^RESIZE=1' uevents || fail "no change uevent with RESIZE=1: $(cat uevents)"
grep -B8 -A8 '^RESIZE=1' uevents | grep -q "^DEVPATH=/devices/virtual/block/lofi$n\$" ||
	fail "the RESIZE=1 uevent is not of lofi$n: $(cat uevents)"
kill "$monitor"
monitor=
dmesg | grep -q "lofi$n: detected capacity change from $((64 * MiB / 512)) to $((128 * MiB / 512))" ||
	fail "no 'detected capacity change' in the kernel log"
resize2fs "$dev" >resize2fs.log 2>&1 || fail "resize2fs of the mounted $dev failed: $(cat resize2fs.log)"
after=$(df -B1 --output=size mnt | tail -n 1)
[ "$after" -gt $((before + 48 * MiB)) ] || fail "the file system did not grow: $before -> $after bytes"
# More than the old device could hold.
fallocate -l 80M mnt/big || fail "80 MiB do not fit in the grown file system ($after bytes)"
cmp ref mnt/data || fail "the file changed while the device grew"
umount mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 of the grown file system found problems"
expect_listing "$(row "$dev" "$PWD/disk.img" "-")"

echo "=== a new size limit, and back to the end of the file"
ok --sizelimit 96M --resize "$dev"
expect_eq "size with a 96 MiB limit" "$(blockdev --getsize64 "$dev")" $((96 * MiB))
expect_listing "$(row "$dev" "$PWD/disk.img" "Sizelimit=$((96 * MiB))")"
ok --resize disk.img
expect_eq "a resize by file name keeps the limit" "$(blockdev --getsize64 "$dev")" $((96 * MiB))
ok --sizelimit 0 --resize "$dev"
expect_eq "size without a limit" "$(blockdev --getsize64 "$dev")" $((128 * MiB))
expect_listing "$(row "$dev" "$PWD/disk.img" "-")"

echo "=== refusals leave the size alone"
S=$PWD
expect_error "could not resize $dev: size limit $((256 * MiB)) from offset 0 reaches past the end of $S/disk.img ($((128 * MiB)) bytes): Invalid argument" \
	--sizelimit 256M --resize "$dev"
expect_error "could not resize $dev: size limit 1000 is not a multiple of the sector size 512: Invalid argument" \
	--sizelimit 1000 --resize "$dev"
truncate -s $((128 * MiB + 100)) disk.img
expect_error "could not resize $dev: size of the region of $S/disk.img ($((128 * MiB + 100)) bytes from offset 0) is not a multiple of the sector size 512: Invalid argument" \
	--resize "$dev"
expect_eq "size after the refusals" "$(blockdev --getsize64 "$dev")" $((128 * MiB))
ok -d "$dev"
truncate -s $((128 * MiB)) disk.img
ok -r -a disk.img
rodev=$OUT
truncate -s $((160 * MiB)) disk.img
expect_error "could not resize $rodev: the mapping is read-only: Read-only file system" --resize "$rodev"
expect_eq "size of the read-only mapping" "$(blockdev --getsize64 "$rodev")" $((128 * MiB))
ok -d "$rodev"
expect_error "could not find filename for $dev: No such device or address" --resize "$dev"
expect_error "could not find device for $S/disk.img: No such file or directory" --resize disk.img
expect_usage --resize "$dev" -a disk.img
unload_lofi
echo "ok: a mounted ext4 grew with its image; limits and refusals as documented"
