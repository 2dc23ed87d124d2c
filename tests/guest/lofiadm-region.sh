#!/usr/bin/env bash
# Mapping a slice of a file and other sector sizes, as a user with a disk
# image does: the second partition of an MBR image made by sfdisk is
# mapped by offset and size limit (lofiadm -o/--sizelimit), made an ext4
# file system, mounted, written, checked with fsck; what the device shows
# is byte for byte that slice of the image, and the rest of the image
# (partition table, first partition) is untouched. A 4096-byte-sector
# mapping (-b 4096) reports its sector size, refuses a 512-byte direct
# read as the block layer does, and carries ext4. Bad offsets, limits
# and sector sizes are refused with a message and leave nothing mapped,
# also where only the driver can tell (a block device's size).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

loops=()
cleanup() {
	mountpoint -q mnt && umount mnt
	lofiadm_cleanup
	local l
	for l in "${loops[@]}"; do
		losetup -d "$l"
	done
}
trap cleanup EXIT

# json_of DEVICE KEY: a property of one mapping in lofiadm --json.
json_of() {
	"$LOFIADM" --json | python3 -c '
import json, sys
dev, key = sys.argv[1], sys.argv[2]
for m in json.load(sys.stdin):
    if m["device"] == dev:
        print(m[key])' "$1" "$2"
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
mkdir mnt
MiB=$((1 << 20))

echo "=== an MBR image with two partitions, the second mapped by offset"
truncate -s 64M disk.img
printf 'label: dos\nstart=2048, size=32768, type=83\nstart=34816, type=83\n' |
	sfdisk -q disk.img || fail "sfdisk could not partition disk.img"
sfdisk -d disk.img >table.before
p2_start=$((34816 * 512))
p2_size=$((64 * MiB - p2_start))
# The first partition gets a known pattern, to show it stays untouched.
head -c $((16 * MiB)) /dev/urandom >p1.ref
dd if=p1.ref of=disk.img bs=1M seek=1 conv=notrunc status=none
ok -o 17MiB --sizelimit $((p2_size / MiB))MiB -a disk.img
dev=$OUT
expect_eq "blockdev --getsize64 $dev" "$(blockdev --getsize64 "$dev")" "$p2_size"
expect_eq "blockdev --getss $dev" "$(blockdev --getss "$dev")" 512
expect_eq "JSON offset of $dev" "$(json_of "$dev" offset)" "$p2_start"
expect_eq "JSON sizelimit of $dev" "$(json_of "$dev" sizelimit)" "$p2_size"
expect_listing "$(row "$dev" "$PWD/disk.img" "Offset=$p2_start,Sizelimit=$p2_size")"
mkfs.ext4 -q -F -L part2 "$dev" || fail "mkfs.ext4 $dev failed"
mount "$dev" mnt || fail "mount $dev failed"
head -c 3M /dev/urandom >ref
cp ref mnt/data
umount mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 $dev found problems"
# What the device holds is exactly that slice of the image.
cmp <(head -c $((4 * MiB)) "$dev") \
	<(tail -c +$((p2_start + 1)) disk.img | head -c $((4 * MiB))) ||
	fail "the first 4 MiB of $dev are not the image's bytes at $p2_start"
ok -d "$dev"
expect_listing
sfdisk -d disk.img >table.after
cmp table.before table.after || fail "the partition table changed"
cmp p1.ref <(tail -c +$((MiB + 1)) disk.img | head -c $((16 * MiB))) ||
	fail "the first partition changed"
# Mapped again to the end of the file (no limit): the file system is there.
ok -r --offset $p2_start -a disk.img
dev=$OUT
expect_eq "size of the mapping to the end" "$(blockdev --getsize64 "$dev")" "$p2_size"
expect_eq "JSON sizelimit of $dev" "$(json_of "$dev" sizelimit)" 0
expect_listing "$(row "$dev" "$PWD/disk.img" "Readonly,Offset=$p2_start")"
mount -o ro "$dev" mnt || fail "mount of the second partition by offset failed"
cmp ref mnt/data || fail "the file written through the first mapping differs"
umount mnt
ok -d "$dev"

echo "=== 4096-byte sectors"
truncate -s 32M fs4k.img
ok -b 4096 -a fs4k.img
dev=$OUT
expect_eq "blockdev --getss $dev" "$(blockdev --getss "$dev")" 4096
expect_eq "JSON block_size of $dev" "$(json_of "$dev" block_size)" 4096
if dd if="$dev" of=/dev/null bs=512 count=1 iflag=direct status=none 2>dd.err; then
	fail "a 512-byte direct read of a 4096-byte-sector device succeeded"
fi
grep -q "Invalid argument" dd.err || fail "a 512-byte direct read: $(cat dd.err), want EINVAL"
dd if="$dev" of=/dev/null bs=4096 count=1 iflag=direct status=none ||
	fail "a 4096-byte direct read failed"
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 on 4096-byte sectors failed"
mount "$dev" mnt || fail "mount of the 4096-byte-sector device failed"
cp ref mnt/data
umount mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 of the 4096-byte-sector device found problems"
ok -d "$dev"

echo "=== bad offsets, limits and sector sizes"
truncate -s 1M small.img
S=$PWD
expect_error "offset 1000 is not a multiple of 512" -o 1000 -a small.img
expect_error "offset 1048576 is not inside $S/small.img (1048576 bytes)" -o 1M -a small.img
expect_error "size limit 1048576 from offset 524288 reaches past the end of $S/small.img (1048576 bytes)" \
	-o 512K --sizelimit 1M -a small.img
expect_error "size limit 6144 is not a multiple of the sector size 4096" -b 4096 --sizelimit 6K -a small.img
truncate -s 1023K odd.img
expect_error "size of the region of $S/odd.img (1047552 bytes from offset 0) is not a multiple of the sector size 4096" \
	-b 4096 -a odd.img
expect_usage -b 3000 -a small.img
[[ $ERR == *"'3000' is not a sector size: use 512, 1024, 2048 or 4096"* ]] ||
	fail "sector size 3000: $ERR"
expect_usage -o 512 -d small.img
[[ $ERR == "lofiadm: -o is only valid with -a"* ]] || fail "-o with -d: $ERR"
expect_usage --sizelimit 1x -a small.img
# The driver's own refusal, past lofiadm's checks: a region past the end
# of a block device (its size is not known beforehand).
blk=$(losetup -f --show small.img) || fail "losetup small.img failed"
loops+=("$blk")
expect_error "could not map file $blk: Invalid argument" -o 2M -a "$blk"
expect_listing
unload_lofi
echo "ok: a partition mapped by offset, 4096-byte sectors, bad regions refused"
