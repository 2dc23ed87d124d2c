#!/usr/bin/env bash
# Faults of the backing file, each a scenario:
#   enospc    a 64 MiB sparse image on an 8 MiB tmpfs: writes past the
#             free space fail as I/O errors (O_DIRECT and buffered + fsync);
#             what was written before still reads back, rewriting allocated
#             blocks still works, another mapping works, unmap works, and
#             the tmpfs unmounts (no file reference left behind);
#   truncate  the image is cut to half while mapped: the first half reads
#             back intact, the rest as zeros, writes go on working;
#   unlink    the image is deleted while mapped: the mapping goes on working
#             (written data reads back), keeps its name, unmaps, and the
#             space is freed after the unmap;
#   9p        the image lives on the host share (9p): written and read
#             through lofi, compared with the file; then deleted on the host
#             side under I/O: errors or not, no crash or hang, and unmap
#             (forced if the device is held) works.
# The VM runner's kernel log scan fails the run on any warning.
# Figure: scenarios passed.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"

small=$PWD/small
share_img=share-$$.img
io_pid=
cleanup() {
	set +e
	[ -z "$io_pid" ] || { kill -KILL "$io_pid"; wait "$io_pid"; } 2>/dev/null
	lofi_teardown
	mountpoint -q "$small" && umount "$small"
	rm -f "$LOFI_RESULTS/$share_img"
}
trap cleanup EXIT

passed=0
scenarios=4
# map_wait FILE: map FILE, wait for the node, print the device.
map_wait() {
	local dev
	dev=$("$map" map "$1") || fail "map $1 failed"
	wait_for 5 test -b "$dev" || fail "$dev is not a block device"
	echo "$dev"
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

echo "=== enospc"
mkdir -p "$small"
mount -t tmpfs -o size=8M tmpfs "$small" || fail "cannot mount an 8 MiB tmpfs"
truncate -s 64M "$small/sparse.img"
dev=$(map_wait "$small/sparse.img")
head -c 4M /dev/urandom >ref
dd if=ref of="$dev" conv=nocreat bs=1M oflag=direct status=none || fail "writing 4 MiB (which fit) failed"
# 16 MiB more, at 8 MiB: the tmpfs fills up part way.
if dd if=/dev/zero of="$dev" conv=nocreat bs=1M seek=8 count=16 oflag=direct status=none 2>dd.err; then
	fail "O_DIRECT writes past the free space of the backing filesystem succeeded"
fi
cat dd.err
grep -q 'Input/output error' dd.err || fail "O_DIRECT writes on a full backing filesystem: want EIO, got: $(cat dd.err)"
if dd if=/dev/zero of="$dev" bs=1M seek=32 count=8 conv=fsync,nocreat status=none 2>dd.err; then
	fail "buffered writes + fsync past the free space of the backing filesystem succeeded"
fi
cat dd.err
grep -q 'Input/output error' dd.err || fail "buffered writes + fsync on a full backing filesystem: want EIO, got: $(cat dd.err)"
cmp -n 4194304 ref "$dev" || fail "the data written before the filesystem filled up does not read back"
# Blocks already allocated can be rewritten.
head -c 1M /dev/urandom >ref2
dd if=ref2 of="$dev" bs=1M oflag=direct conv=notrunc,nocreat status=none || fail "rewriting allocated blocks failed"
cmp -n 1048576 ref2 "$dev" || fail "rewritten blocks do not read back"
# Another mapping, elsewhere, works meanwhile.
truncate -s 1M other.img
dev2=$(map_wait "$PWD/other.img")
dd if=ref2 of="$dev2" conv=nocreat bs=1M oflag=direct status=none || fail "writing another mapping failed"
cmp ref2 "$dev2" || fail "another mapping does not read back"
"$map" unmap "$dev2" || fail "unmap $dev2 failed"
"$map" unmap "$dev" || fail "unmap of the full device failed"
wait_for 10 test ! -e "$dev" || fail "$dev still exists after the unmap"
umount "$small" || fail "the full tmpfs does not unmount after the unmap (a file reference left?)"
passed=$((passed + 1))
echo "ok: enospc"

echo "=== truncate"
head -c 1M /dev/urandom >ref
cp ref shrink.img
dev=$(map_wait "$PWD/shrink.img")
truncate -s 512K shrink.img
cmp -n 524288 ref "$dev" || fail "the first half changed after the truncate"
head -c 524288 /dev/zero >zeros
cmp -i 524288:0 -n 524288 "$dev" zeros || fail "the part past the new end does not read as zeros"
dd if=ref of="$dev" bs=64k count=4 oflag=direct conv=notrunc,nocreat status=none || fail "writing after the truncate failed"
cmp -n 262144 ref "$dev" || fail "writes after the truncate do not read back"
"$map" unmap "$dev" || fail "unmap failed"
passed=$((passed + 1))
echo "ok: truncate"

echo "=== unlink"
mkdir -p "$small"
mount -t tmpfs -o size=16M tmpfs "$small" || fail "cannot mount a tmpfs"
truncate -s 8M "$small/gone.img"
dev=$(map_wait "$small/gone.img")
rm "$small/gone.img"
head -c 8M /dev/urandom >ref
dd if=ref of="$dev" conv=nocreat bs=1M oflag=direct status=none || fail "writing the device of a deleted file failed"
echo 3 >/proc/sys/vm/drop_caches
cmp ref "$dev" || fail "the device of a deleted file does not read back"
expect_eq "the name of the deleted file's mapping" "$("$map" filename "$dev")" "$small/gone.img"
used=$(df --output=used -k "$small" | tail -n 1)
[ "$used" -ge 8000 ] || fail "the deleted file's space is not in use while it is mapped ($used KiB)"
"$map" unmap "$small/gone.img" || fail "unmap by the deleted file's name failed"
wait_for 10 test ! -e "$dev" || fail "$dev still exists after the unmap"
wait_for 10 sh -c "[ \$(df --output=used -k '$small' | tail -n 1) -lt 1000 ]" ||
	fail "the deleted file's space was not freed by the unmap"
umount "$small" || fail "the tmpfs does not unmount"
passed=$((passed + 1))
echo "ok: unlink"

echo "=== 9p"
img=$LOFI_RESULTS/$share_img
grep -q " $LOFI_RESULTS 9p " /proc/mounts || echo "(note: $LOFI_RESULTS is not listed as 9p in /proc/mounts)"
truncate -s 8M "$img"
dev=$(map_wait "$img")
head -c 4M /dev/urandom >ref
dd if=ref of="$dev" conv=nocreat bs=1M oflag=direct status=none || fail "writing through lofi to a 9p file failed"
echo 3 >/proc/sys/vm/drop_caches
cmp -n 4194304 ref "$dev" || fail "a 9p-backed device does not read back"
cmp -n 4194304 ref "$img" || fail "the 9p file does not hold what was written through lofi"
# Deleted on the host under I/O: whatever the I/O does, it must end.
(
	while :; do
		dd if=/dev/urandom of="$dev" conv=nocreat bs=64k count=16 oflag=direct status=none || exit 1
		dd if="$dev" of=/dev/null bs=64k count=16 iflag=direct status=none || exit 1
	done
) 2>io.err &
io_pid=$!
sleep 1
host_delete "$share_img"
sleep 2
if kill -0 "$io_pid" 2>/dev/null; then
	echo "I/O goes on after the host deleted the file (the 9p server keeps it open)"
	kill "$io_pid"
fi
wait "$io_pid" 2>/dev/null || true
io_pid=
cat io.err
dd if="$dev" of=/dev/null bs=64k count=4 iflag=direct status=none 2>&1 || echo "(reads fail now)"
timeout 30 "$map" unmap "$dev" force || fail "the forced unmap of the 9p device whose file the host deleted failed or hung"
wait_for 10 test ! -e "$dev" || fail "$dev still exists after the unmap"
passed=$((passed + 1))
echo "ok: 9p"

figure backing-faults scenarios="$scenarios" passed="$passed"
expect_eq "mappings left" "$("$map" list)" ""
unload_lofi
echo "ok: $passed of $scenarios backing file fault scenarios"
