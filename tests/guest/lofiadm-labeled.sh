#!/usr/bin/env bash
# Labeled mappings (lofiadm -l), as a user with a partitioned disk image
# does: an image with two partitions made by sfdisk on a plain file,
# mapped labeled; its partitions are /dev/lofiNp1 and /dev/lofiNp2 with
# the /dev/lofi/NpM links lofiadm makes; each gets ext4, is mounted and
# holds a file; lsblk -p, findmnt and the sysfs name of each node agree;
# a repartition through the device (sfdisk) and a re-read after the image
# changed (blockdev --rereadpt) make the partitions follow; an unmap while
# a partition is mounted is refused, a forced one succeeds, the file
# system on the partition shuts down and unmounts, and the backing file
# system unmounts at once. A partition cannot back another mapping
# (EINVAL). An unlabeled mapping of the same image is never
# scanned. With udev running, the shipped rule 60-lofi.rules makes the
# same links for a mapping made without lofiadm, and removes them.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
for tool in sfdisk mkfs.ext4 fsck.ext4 lsblk findmnt blockdev; do
	command -v "$tool" >/dev/null || fail "$tool is missing in the guest"
done

rule_installed=0
cleanup() {
	set +e
	for m in mnt1 mnt2; do
		mountpoint -q "$m" && umount "$m"
	done
	lofiadm_cleanup
	mountpoint -q bk && umount bk
	if [ "$rule_installed" = 1 ]; then
		rm -f /run/udev/rules.d/60-lofi.rules
		udevadm control --reload
	fi
}
trap cleanup EXIT

MiB=$((1 << 20))
load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
mkdir mnt1 mnt2 bk
# The backing file system, to unmount right after the forced unmap.
mount -t tmpfs -o size=160M tmpfs bk || fail "mount of the backing tmpfs failed"

# expect_node PATH NAME: PATH is the block node of the kernel's disk or
# partition NAME (same device number as /sys/class/block/NAME/dev).
expect_node() {
	[ -b "$1" ] || fail "$1 is not a block device"
	expect_eq "device number of $1" "$(stat -L -c '%Hr:%Lr' "$1")" "$(cat "/sys/class/block/$2/dev")"
}

# partitions N: the kernel's partitions of lofiN, sorted.
partitions() {
	(cd "/sys/block/lofi$1" && for p in "lofi$1"p*; do [ -e "$p/partition" ] && echo "$p"; done)
}

echo "=== an image with two partitions, mapped labeled"
truncate -s 64M bk/disk.img
printf 'label: dos\n,23M,L\n,,L\n' | sfdisk -q bk/disk.img || fail "sfdisk of the image failed"
ok -l -a "$PWD/bk/disk.img"
dev=$OUT
n=$(minor_of "$dev")
expect_eq "device of the labeled map" "$dev" "/dev/lofi/$n"
expect_node "/dev/lofi$n" "lofi$n"
expect_eq "partitions of lofi$n" "$(partitions "$n" | tr '\n' ' ')" "lofi${n}p1 lofi${n}p2 "
for m in 1 2; do
	expect_node "/dev/lofi${n}p$m" "lofi${n}p$m"
	expect_node "/dev/lofi/${n}p$m" "lofi${n}p$m"
	[ -L "/dev/lofi/${n}p$m" ] || fail "/dev/lofi/${n}p$m is not a link"
done
expect_eq "size of p1" "$(blockdev --getsize64 "/dev/lofi${n}p1")" $((23 * MiB))
expect_eq "size of p2" "$(blockdev --getsize64 "/dev/lofi${n}p2")" $((40 * MiB))
expect_eq "/sys/block/lofi$n/lofi/labeled" "$(cat "/sys/block/lofi$n/lofi/labeled")" 1
expect_listing "$(row "$dev" "$PWD/bk/disk.img" Labeled)"
ok --json
python3 -c '
import json, sys
m = json.loads(sys.argv[1])[0]
assert m["labeled"] is True, m
assert m["partitions"] == [sys.argv[2] + "p1", sys.argv[2] + "p2"], m
' "$OUT" "/dev/lofi/$n" || fail "JSON listing of the labeled mapping: $OUT"

echo "=== a partition of a lofi disk is no backing file"
if "$map" map "/dev/lofi${n}p1" 2>map.err; then fail "mapping /dev/lofi${n}p1 succeeded"; fi
grep -q EINVAL map.err || fail "mapping /dev/lofi${n}p1: want EINVAL, got: $(cat map.err)"

echo "=== names the tools print exist and lead to sysfs"
lsblk -pnro NAME "/dev/lofi$n" >lsblk.out || fail "lsblk -p /dev/lofi$n failed"
expect_eq "lsblk -p" "$(tr '\n' ' ' <lsblk.out)" "/dev/lofi$n /dev/lofi${n}p1 /dev/lofi${n}p2 "
while read -r node; do
	[ -b "$node" ] || fail "lsblk -p printed $node, which is no block device"
done <lsblk.out
# As xfstests derives the sysfs name: from the node's resolved file name.
for node in "$dev" "/dev/lofi/${n}p2"; do
	name=$(basename "$(realpath "$node")")
	[ -e "/sys/class/block/$name" ] || fail "no /sys/class/block/$name for $node"
done

echo "=== ext4 on each partition, mounted"
for m in 1 2; do
	mkfs.ext4 -q -F "/dev/lofi/${n}p$m" || fail "mkfs.ext4 of p$m failed"
	mount "/dev/lofi/${n}p$m" "mnt$m" || fail "mount of p$m failed"
	head -c 3M /dev/urandom >"ref$m"
	cp "ref$m" "mnt$m/data"
done
sync
for m in 1 2; do
	src=$(findmnt -no SOURCE "mnt$m")
	[ -b "$src" ] || fail "findmnt prints $src for mnt$m, which is no block device"
	expect_eq "what findmnt prints for mnt$m" "$(realpath "$src")" "/dev/lofi${n}p$m"
	df --output=source "mnt$m" | tail -n 1 | grep -qx "$src" || fail "df names another source for mnt$m"
done
echo "=== unmap while a partition is mounted: busy"
umount mnt1
expect_error "could not unmap device $dev: Device or resource busy" -d "$dev"
umount mnt2
for m in 1 2; do
	fsck.ext4 -fn "/dev/lofi${n}p$m" >/dev/null || fail "fsck.ext4 of p$m found problems"
done

# reread N WANT: BLKRRPART of lofiN until its partitions are WANT (udev's
# probes of the partitions may keep one open for a moment: EBUSY).
reread() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(partitions "$1" | tr '\n' ' ')" = "$2" ] && return 0
		udevadm settle -t 5 >/dev/null 2>&1
		blockdev --rereadpt "/dev/lofi$1" 2>/dev/null
		sleep 0.1
	done
	fail "the partitions of lofi$1 are $(partitions "$1" | tr '\n' ' '), want $2"
}

echo "=== repartition through the device, re-read after the image changed"
printf 'label: dos\n,16M,L\n,16M,L\n,,L\n' | sfdisk -q "/dev/lofi$n" ||
	echo "note: sfdisk of /dev/lofi$n reported a failure (its re-read may have met udev's probe)"
# sfdisk wrote the table through the device and asked for the re-read.
reread "$n" "lofi${n}p1 lofi${n}p2 lofi${n}p3 "
expect_eq "partitions after sfdisk" "$(partitions "$n" | tr '\n' ' ')" "lofi${n}p1 lofi${n}p2 lofi${n}p3 "
expect_eq "size of the new p1" "$(blockdev --getsize64 "/dev/lofi${n}p1")" $((16 * MiB))
ok
expect_node "/dev/lofi/${n}p3" "lofi${n}p3"
# The image itself gets one partition; the mapping reads it again (once
# the device's page cache, which holds the old table, is dropped).
printf 'label: dos\n,,L\n' | sfdisk -q --no-reread bk/disk.img || fail "sfdisk of the image failed"
blockdev --flushbufs "/dev/lofi$n"
reread "$n" "lofi${n}p1 "
[ ! -e "/dev/lofi${n}p3" ] || fail "/dev/lofi${n}p3 still exists after the re-read"
expect_eq "size of the only partition" "$(blockdev --getsize64 "/dev/lofi${n}p1")" $((63 * MiB))

echo "=== forced unmap with a mounted partition"
mkfs.ext4 -q -F "/dev/lofi${n}p1" || fail "mkfs.ext4 of the only partition failed"
mount "/dev/lofi${n}p1" mnt1 || fail "mount of the only partition failed"
cp ref1 mnt1/data
sync
ok -f -d "$dev"
expect_listing
if touch mnt1/after 2>/dev/null && sync -f mnt1 2>/dev/null; then
	fail "the file system on the partition still takes writes after the forced unmap"
fi
# The backing file is closed: its file system unmounts at once, while the
# dead partition is still mounted.
umount bk || fail "the backing file system is busy after the forced unmap"
umount mnt1 || fail "umount of the partition's file system after the forced unmap failed"
# The last close removes the disk and its partitions.
wait_for 10 test ! -e "/dev/lofi${n}p1" || fail "/dev/lofi${n}p1 still exists after the last close"
wait_for 10 test ! -e "/dev/lofi$n" || fail "/dev/lofi$n still exists after the last close"
mount -t tmpfs -o size=160M tmpfs bk || fail "mount of the backing tmpfs failed"

echo "=== unlabeled: never scanned"
truncate -s 64M bk/disk.img
printf 'label: dos\n,23M,L\n,,L\n' | sfdisk -q bk/disk.img || fail "sfdisk of the image failed"
ok -a "$PWD/bk/disk.img"
dev=$OUT
n=$(minor_of "$dev")
expect_eq "partitions of the unlabeled lofi$n" "$(partitions "$n")" ""
expect_eq "/sys/block/lofi$n/lofi/labeled" "$(cat "/sys/block/lofi$n/lofi/labeled")" 0
if blockdev --rereadpt "/dev/lofi$n" 2>rrpt.err; then fail "BLKRRPART of an unlabeled mapping succeeded"; fi
grep -q "Invalid argument" rrpt.err || fail "BLKRRPART of an unlabeled mapping: $(cat rrpt.err), want EINVAL"
expect_eq "partitions after the refused re-read" "$(partitions "$n")" ""
expect_listing "$(row "$dev" "$PWD/bk/disk.img" -)"
ok -d "$dev"

echo "=== the udev rule makes the links for a map without lofiadm"
if udevadm control --ping 2>/dev/null; then
	mkdir -p /run/udev/rules.d
	cp "$LOFI_ROOT/tools/udev/60-lofi.rules" /run/udev/rules.d/ || fail "installing the rule failed"
	rule_installed=1
	udevadm control --reload || fail "udevadm control --reload failed"
	# The links lofiadm made above (it never removes them): udev must
	# make its own.
	rm -f /dev/lofi/*
	kdev=$("$map" map "$PWD/bk/disk.img" labeled) || fail "lofi_map map labeled failed"
	n=${kdev#/dev/lofi}
	udevadm settle -t 30 || fail "udev did not settle"
	expect_node "/dev/lofi/$n" "lofi$n"
	expect_node "/dev/lofi/${n}p1" "lofi${n}p1"
	expect_node "/dev/lofi/${n}p2" "lofi${n}p2"
	"$map" unmap "$n" || fail "unmap of lofi$n failed"
	udevadm settle -t 30 || fail "udev did not settle"
	for link in "/dev/lofi/$n" "/dev/lofi/${n}p1" "/dev/lofi/${n}p2"; do
		[ ! -L "$link" ] || fail "udev left $link behind after the unmap"
	done
else
	echo "note: udev does not run: the rule is not exercised"
fi
umount bk || fail "the backing tmpfs did not unmount"
unload_lofi
echo "ok: labeled mappings: partitions mounted, re-read, busy and forced unmaps, names, udev links"
