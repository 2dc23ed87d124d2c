#!/usr/bin/env bash
# The scripting idiom: `mkfs.ext4 $(lofiadm -a img)` works because
# lofiadm prints only the device and returns once its node exists. The
# file system is mounted, written, unmounted and checked; the plain
# lofiadm -d right after (udev may still be probing the device) succeeds;
# mapped again read-only, the data is there and the disk is read-only.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

cleanup() {
	mountpoint -q mnt && umount mnt
	lofiadm_cleanup
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
truncate -s 32M fs.img
mkdir mnt

echo "=== mkfs.ext4 \$(lofiadm -a fs.img)"
mkfs.ext4 -q -F -L lofiadm "$("$LOFIADM" -a fs.img)" || fail "mkfs.ext4 \$(lofiadm -a fs.img) failed"
ok fs.img
dev=$OUT
expect_eq "device of fs.img" "$dev" /dev/lofi/1
mount "$dev" mnt || fail "mount $dev failed"
head -c 1M /dev/urandom >ref
cp ref mnt/data
umount mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 $dev found problems"
ok -d fs.img
expect_listing

echo "=== mapped again read-only"
ok -r -a fs.img
dev=$OUT
expect_eq "blockdev --getro $dev" "$(blockdev --getro "$dev")" 1
expect_listing "$(row "$dev" "$PWD/fs.img" Readonly)"
mount -o ro "$dev" mnt || fail "read-only mount of $dev failed"
cmp ref mnt/data || fail "the file written through the first mapping differs"
umount mnt
ok -d "$dev"
expect_listing
unload_lofi
echo "ok: mkfs.ext4 \$(lofiadm -a img), mount, fsck and unmap"
