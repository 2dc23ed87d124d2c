#!/usr/bin/env bash
# Discard and write zeroes: REQ_OP_DISCARD punches a hole in the backing
# file, REQ_OP_WRITE_ZEROES zeroes its range without writing data. For a
# backing file on tmpfs and one on ext4 (on a loop device):
#  - the queue advertises discard_max_bytes and write_zeroes_max_bytes;
#  - ext4 on /dev/lofi/N: 64 MiB of files written and synced, deleted,
#    fstrim: the backing file's allocated blocks (stat %b) shrink by at
#    least 48 MiB;
#  - blkdiscard of 8 MiB of written data: reads back as zeros, and the
#    backing file's allocation shrinks by at least 7 MiB;
#  - blkdiscard -z (BLKZEROOUT, write zeroes with REQ_NOUNMAP) of 8 MiB of
#    written data reads back as zeros; on ext4 the range then holds no
#    written extent (filefrag: unwritten or a hole, so no zeros were
#    written as data) and write zeroes stays advertised.
# A read-only mapping advertises neither. A backing file system whose
# fallocate has no PUNCH_HOLE (vfat: only plain allocation): the first
# discard switches discard off (discard_max_bytes 0) with one kernel log
# line from lofi; 10 more blkdiscard calls add no kernel log line about it,
# and a burst of 8 concurrent discards on a fresh mapping again logs lofi's
# line exactly once; the mapping keeps working. A backing block device
# with 4096-byte sectors (a loop device) takes only whole sectors in
# fallocate: a mapping of it from offset 512 advertises neither (every
# discard would fail), one from offset 4096 both, and its blkdiscard
# reads back as zeros.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"
# shellcheck source=tests/guest/datapath-lib.sh
. "$LOFI_ROOT/tests/guest/datapath-lib.sh"

mnt=$PWD/mnt
fat=$PWD/fat
tmp=$PWD/tmpfs
loops=()
cleanup() {
	set +e
	mountpoint -q "$mnt" && umount "$mnt"
	lofi_teardown
	for l in "${loops[@]}"; do
		losetup -d "$l"
	done
	mountpoint -q "$fat" && umount "$fat"
	mountpoint -q "$tmp" && umount "$tmp"
	bk_teardown
}
trap cleanup EXIT

MiB=1048576
# zeros DEV OFF_MIB LEN_MIB: the range reads back as zeros (O_DIRECT).
zeros() {
	cmp -s -n $(($3 * MiB)) <(dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none) /dev/zero
}
# fill DEV OFF_MIB LEN_MIB: random data there, synced.
fill() {
	dd if=/dev/urandom of="$1" bs=1M seek="$2" count="$3" oflag=direct conv=fsync,notrunc status=none ||
		fail "writing $3 MiB at $2 MiB of $1 failed"
}
# written_blocks FILE OFF_MIB LEN_MIB: 4 KiB blocks of the range that are in
# written extents of FILE (filefrag -v: extents without "unwritten").
written_blocks() {
	filefrag -v -b4096 "$1" | awk -v lo=$(($2 * 256)) -v hi=$((($2 + $3) * 256)) -F: '
		$1 ~ /^ *[0-9]+$/ {
			split($2, r, /\.\./); s = r[1] + 0; e = r[2] + 1
			if ($0 ~ /unwritten/ || e <= lo || s >= hi) next
			n += (e < hi ? e : hi) - (s > lo ? s : lo)
		}
		END { print n + 0 }'
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
dp_ext4_setup 320M
# A tmpfs of its own (the scratch directory is an overlay on one).
mkdir -p "$tmp"
mount -t tmpfs -o size=200M tmpfs "$tmp" || fail "mounting a tmpfs failed"

for where in tmpfs ext4; do
	if [ "$where" = tmpfs ]; then img=$tmp/trim.img; else img=$bk_mnt/trim.img; fi
	echo "=== backing file on $where: $img [${SECONDS} s]"
	truncate -s 128M "$img"
	dev=$("$map" map "$img") || fail "map $img failed"
	n=$(minor_of "$dev")
	wait_for 5 test -b "$dev" || fail "$dev is not a block device"
	dmax=$(queue_limit "$n" discard_max_bytes)
	zmax=$(queue_limit "$n" write_zeroes_max_bytes)
	echo "lofi$n: discard_max_bytes $dmax, write_zeroes_max_bytes $zmax, discard_granularity $(queue_limit "$n" discard_granularity)"
	[ "$dmax" -gt 0 ] || bad "$where: a backing file with fallocate, yet discard_max_bytes is 0"
	[ "$zmax" -gt 0 ] || bad "$where: a backing file with fallocate, yet write_zeroes_max_bytes is 0"

	# fstrim of ext4 on the device. No discard or write zeroes before it
	# (neither mkfs's nor ext4's lazy inode table init): tmpfs has no
	# ZERO_RANGE, and what a failed write zeroes switches off is not the
	# point here.
	mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 "$dev" || fail "mkfs.ext4 on $dev failed"
	mkdir -p "$mnt"
	mount -t ext4 -o noinit_itable "$dev" "$mnt" || fail "mount $dev failed"
	for i in 1 2 3 4 5 6 7 8; do
		dd if=/dev/zero of="$mnt/f$i" bs=1M count=8 status=none || fail "writing $mnt/f$i failed"
	done
	sync
	a_full=$(alloc_kib "$img")
	rm -f "$mnt"/f*
	sync
	if out=$(fstrim -v "$mnt" 2>&1); then echo "$out"; else bad "$where: fstrim $mnt failed: $out"; fi
	sync
	a_trim=$(alloc_kib "$img")
	echo "backing file allocation: $a_full KiB with 64 MiB of files, $a_trim KiB after rm and fstrim"
	[ $((a_full - a_trim)) -ge 49152 ] ||
		bad "$where: fstrim gave back $((a_full - a_trim)) KiB of the backing file, want at least 48 MiB of the 64 MiB deleted"
	umount "$mnt" || fail "umount $mnt failed"

	# blkdiscard of written data.
	fill "$dev" 16 8
	a_before=$(alloc_kib "$img")
	if ! out=$(blkdiscard -f -o $((16 * MiB)) -l $((8 * MiB)) "$dev" 2>&1); then
		bad "$where: blkdiscard of 8 MiB failed: $out"
	fi
	a_after=$(alloc_kib "$img")
	echo "blkdiscard of 8 MiB: allocation $a_before KiB -> $a_after KiB"
	zeros "$dev" 16 8 || bad "$where: a discarded range does not read back as zeros"
	[ $((a_before - a_after)) -ge 7168 ] ||
		bad "$where: blkdiscard of 8 MiB gave back $((a_before - a_after)) KiB of the backing file, want at least 7 MiB"

	# Write zeroes.
	fill "$dev" 32 8
	if ! out=$(blkdiscard -f -z -o $((32 * MiB)) -l $((8 * MiB)) "$dev" 2>&1); then
		bad "$where: blkdiscard -z of 8 MiB failed: $out"
	fi
	zeros "$dev" 32 8 || bad "$where: a zeroed range does not read back as zeros"
	if [ "$where" = ext4 ]; then
		sync
		w=$(written_blocks "$img" 32 8)
		echo "after blkdiscard -z: $w of 2048 blocks of the range in written extents; write_zeroes_max_bytes $(queue_limit "$n" write_zeroes_max_bytes)"
		[ "$w" -eq 0 ] || { filefrag -v -b4096 "$img" | head -n 30; bad "ext4: after write zeroes, $w blocks of the range hold written zeros: the zeros were written as data, not by fallocate"; }
		[ "$(queue_limit "$n" write_zeroes_max_bytes)" -gt 0 ] || bad "ext4: write zeroes was switched off by a backing file that supports ZERO_RANGE"
	fi
	"$map" unmap "$n" || fail "unmap $dev failed"
	cmp -s -n $((8 * MiB)) <(dd if="$img" bs=1M skip=16 count=8 status=none) /dev/zero ||
		bad "$where: the discarded range of the backing file is not zeros"
done

# A read-only mapping advertises neither.
echo "=== read-only mapping [${SECONDS} s]"
dev=$("$map" map "$tmp/trim.img" ro) || fail "read-only map failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev is not a block device"
echo "lofi$n (ro): discard_max_bytes $(queue_limit "$n" discard_max_bytes), write_zeroes_max_bytes $(queue_limit "$n" write_zeroes_max_bytes)"
expect_eq "discard_max_bytes of a read-only mapping" "$(queue_limit "$n" discard_max_bytes)" 0
expect_eq "write_zeroes_max_bytes of a read-only mapping" "$(queue_limit "$n" write_zeroes_max_bytes)" 0
"$map" unmap "$n" || fail "unmap $dev failed"

# vfat: fallocate without PUNCH_HOLE.
echo "=== backing file on vfat (no PUNCH_HOLE) [${SECONDS} s]"
truncate -s 24M "$PWD/fat.img"
mkfs.vfat "$PWD/fat.img" >/dev/null || fail "mkfs.vfat failed"
mkdir -p "$fat"
mount -t vfat -o loop "$PWD/fat.img" "$fat" || fail "mounting the vfat image failed"
truncate -s 8M "$fat/img" || fail "creating an 8 MiB file on vfat failed"
if fallocate -p -o 0 -l 4096 "$fat/img" 2>/dev/null; then
	fail "vfat punched a hole: find another file system without PUNCH_HOLE"
fi
# lofi_lines: lofi's own lines about discard in the log after mark $1
# (not the block layer's "... error, dev lofiN, ..." request errors).
lofi_lines() {
	kmsg_since "$1" | grep -i 'lofi' | grep -iE 'discard|punch|fallocate|trim|zero' | grep -vc ' error, dev ' || true
}
dev=$("$map" map "$fat/img") || fail "map $fat/img failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev is not a block device"
echo "lofi$n: discard_max_bytes $(queue_limit "$n" discard_max_bytes) before any discard"
[ "$(queue_limit "$n" discard_max_bytes)" -gt 0 ] ||
	bad "vfat: the backing file has fallocate, yet discard_max_bytes is 0 before any discard"
kmsg_mark vfat-first
first=0
blkdiscard -f -o 0 -l "$MiB" "$dev" 2>discard.err || first=$?
echo "first blkdiscard: status $first $(cat discard.err)"
dmax=$(queue_limit "$n" discard_max_bytes)
[ "$dmax" = 0 ] || bad "vfat: discard_max_bytes is $dmax after a discard the backing file could not do, want 0"
kmsg_mark vfat-more
for i in $(seq 1 10); do
	blkdiscard -f -o $((i % 8 * MiB)) -l "$MiB" "$dev" 2>/dev/null && bad "vfat: blkdiscard $i succeeded after discard was switched off"
done
more=$(kmsg_since vfat-more | grep -c 'lofi' || true)
lines=$(lofi_lines vfat-first)
echo "kernel log after the first discard:"
kmsg_since vfat-first | sed 's/^/    /'
[ "$lines" = 1 ] || bad "vfat: lofi logged $lines lines about the failed discard, want exactly 1"
[ "$more" = 0 ] || bad "vfat: 10 more discards after the switch-off added $more kernel log lines about lofi, want none"
head -c 1M /dev/urandom >chunk
dd if=chunk of="$dev" bs=64k seek=32 oflag=direct conv=fsync,nocreat status=none || bad "vfat: writing to the mapping after the failed discards failed"
cmp -n "$MiB" chunk <(dd if="$fat/img" bs=64k skip=32 count=16 status=none) || bad "vfat: the backing file lacks what was written"
"$map" unmap "$n" || fail "unmap $dev failed"

# A burst of concurrent discards on a fresh mapping: still one line.
dev=$("$map" map "$fat/img") || fail "map $fat/img again failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev is not a block device"
[ "$(queue_limit "$n" discard_max_bytes)" -gt 0 ] || bad "vfat: a fresh mapping has discard_max_bytes 0"
kmsg_mark vfat-burst
pids=()
for i in 0 1 2 3 4 5 6 7; do
	blkdiscard -f -o $((i * MiB)) -l "$MiB" "$dev" 2>/dev/null &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
lines=$(lofi_lines vfat-burst)
echo "kernel log after 8 concurrent discards:"
kmsg_since vfat-burst | sed 's/^/    /'
[ "$lines" = 1 ] || bad "vfat: lofi logged $lines lines about 8 concurrent failed discards, want exactly 1"
total=$(kmsg_since vfat-burst | grep -c 'lofi' || true)
[ "$total" -le 9 ] || bad "vfat: $total kernel log lines about lofi for 8 discards"
expect_eq "discard_max_bytes after the burst" "$(queue_limit "$n" discard_max_bytes)" 0
"$map" unmap "$n" || fail "unmap $dev failed"
umount "$fat" || fail "umount $fat failed"

echo "=== backing block device with 4096-byte sectors, regions [${SECONDS} s]"
truncate -s 64M "$tmp/disk4k.img"
loop4k=$(losetup -f --show -b 4096 "$tmp/disk4k.img") || fail "losetup -b 4096 failed"
loops+=("$loop4k")
dev=$("$LOFIADM" -o 512 --sizelimit 32M -a "$loop4k") || fail "lofiadm -o 512 -a $loop4k failed"
n=$(minor_of "$dev")
echo "lofi$n (offset 512): discard_max_bytes $(queue_limit "$n" discard_max_bytes), write_zeroes_max_bytes $(queue_limit "$n" write_zeroes_max_bytes)"
expect_eq "discard_max_bytes of a misaligned region of a 4096-byte-sector disk" \
	"$(queue_limit "$n" discard_max_bytes)" 0
expect_eq "write_zeroes_max_bytes of a misaligned region of a 4096-byte-sector disk" \
	"$(queue_limit "$n" write_zeroes_max_bytes)" 0
"$map" unmap "$n" || fail "unmap $dev failed"
dev=$("$LOFIADM" -o 4096 --sizelimit 32M -b 4096 -a "$loop4k") || fail "lofiadm -o 4096 -b 4096 -a $loop4k failed"
n=$(minor_of "$dev")
[ "$(queue_limit "$n" discard_max_bytes)" -gt 0 ] ||
	bad "an aligned region of a 4096-byte-sector disk has discard_max_bytes 0"
fill "$dev" 8 8
blkdiscard -o $((8 * MiB)) -l $((8 * MiB)) "$dev" || bad "blkdiscard of an aligned region of $loop4k failed"
zeros "$dev" 8 8 || bad "the discarded range of the aligned region does not read back as zeros"
"$map" unmap "$n" || fail "unmap $dev failed"

[ "$failures" -eq 0 ] || fail "$failures check(s) failed (after ${SECONDS} s)"
unload_lofi
echo "ok: discard punches holes, write zeroes zeroes without writing, read-only and vfat limits (${SECONDS} s)"
