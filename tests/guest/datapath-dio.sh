#!/usr/bin/env bash
# Direct I/O mode (LOFI_FLAG_DIRECT_IO). The backing file lives on ext4 on a
# loop device with 4 KiB logical blocks, so its direct-I/O alignment
# (statx STATX_DIOALIGN) is 4096, not the default 512:
#  - `lofi_map map FILE direct` is granted (no "direct I/O refused"), the
#    mapping's li_flags say LOFI_FLAG_DIRECT_IO and its logical block size
#    (blockdev --getss, li_block_size) is the file's alignment, 4096;
#  - lofi_data_test random (buffered and O_DIRECT opens of the device) and
#    pattern (O_DIRECT), verified through the device and in the backing
#    file;
#  - no double caching: with the page cache dropped first, 16 MiB written
#    through the device (O_DIRECT and buffered opens) leave at most 1 MiB
#    of the backing file in the page cache, during the writes and after;
#    the same writes through a buffered mapping leave at least 8 MiB
#    (which shows that the probe sees the cache);
#  - mkfs.ext4 on the device, a tree written, unmounted, e2fsck -fn clean,
#    mounted again and the tree intact (this is what showed direct writes
#    tried without blocking that ended in EAGAIN failed instead of being
#    retried by a worker: the journal's writes were lost);
#  - a file system that refuses O_DIRECT (ramfs: no direct_IO, so open
#    with O_DIRECT is EINVAL) is mapped buffered: "direct I/O refused",
#    li_flags 0, block size 512, and the mapping works;
#  - a forced unmap while fio writes with O_DIRECT at queue depth 8 returns
#    within 10 s, fio stops with EIO within 30 s, and the backing file
#    system unmounts within 5 s after that (no request left holding the
#    file).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"
# shellcheck source=tests/guest/datapath-lib.sh
. "$LOFI_ROOT/tests/guest/datapath-lib.sh"
command -v fio >/dev/null || fail "fio is not installed on the host (DEBIAN_PACKAGES in scripts/versions.env)"

mnt=$PWD/mnt
ram=$PWD/ram
bg_pid=
cleanup() {
	set +e
	[ -z "$bg_pid" ] || { kill -KILL "$bg_pid" 2>/dev/null; wait "$bg_pid" 2>/dev/null; }
	mountpoint -q "$mnt" && umount "$mnt"
	lofi_teardown
	mountpoint -q "$ram" && umount "$ram"
	bk_teardown
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
dp_ext4_setup 256M 4096
img=$bk_mnt/dio.img
truncate -s 16M "$img"
align=$(dio_offset "$img")
echo "backing file $img on ext4 on $bk_loop (4 KiB sectors): direct-I/O offset alignment $align"
# The premise: the file system raises the alignment, so --getss can tell.
[ "$align" = 4096 ] || fail "ext4 on a loop device with 4 KiB sectors reports a direct-I/O alignment of $align, want 4096"

# 1. The map: granted, flagged, with the file's alignment as block size.
echo "=== direct mapping of $img [${SECONDS} s]"
dev=$(map_direct "$img")
n=$(minor_of "$dev")
[ "$(direct_refused)" = 0 ] || bad "direct I/O was refused for a file on ext4"
fields=$(map_fields "$n")
echo "$dev: $fields, blockdev --getss $(blockdev --getss "$dev")"
case $fields in flags=0x1\ *) ;; *) bad "li_flags of the direct mapping: $fields, want flags=0x1 (LOFI_FLAG_DIRECT_IO)" ;; esac
case $fields in *" block_size=$align "*) ;; *) bad "li_block_size of the direct mapping: $fields, want $align" ;; esac
expect_eq "size of $dev" "$(blockdev --getsize64 "$dev")" 16777216
ss=$(blockdev --getss "$dev")
[ "$ss" = "$align" ] || bad "logical block size of $dev (blockdev --getss): $ss, want the backing file's direct-I/O alignment $align"

# 2. Data through the direct mapping, buffered and O_DIRECT opens.
echo "=== data through $dev [${SECONDS} s]"
"$data" random --buffered --seed 21 --iterations 20 "$dev" "$img" || bad "buffered random I/O on the direct mapping"
"$data" random --direct --seed 22 --iterations 20 "$dev" "$img" || bad "O_DIRECT random I/O on the direct mapping"
"$data" pattern --direct --seed 23 "$dev" "$img" || bad "O_DIRECT pattern on the direct mapping"

# 3. The backing file's page cache. Half the writes with O_DIRECT, half
#    through the device's own page cache; sampled during and after.
# cache_run DEV: prints the peak resident KiB of $img while writing 16 MiB.
cache_run() {
	drop_caches
	echo "resident before: $(resident_kib "$img") KiB" >&2
	{
		dd if=/dev/zero of="$1" bs=1M count=8 oflag=direct status=none &&
			dd if=/dev/zero of="$1" bs=1M count=8 seek=8 conv=fsync status=none
	} &
	bg_pid=$!
	peak_resident_kib "$bg_pid" "$img"
	wait "$bg_pid" || fail "the writes to $1 failed"
	bg_pid=
}
echo "=== page cache of the backing file [${SECONDS} s]"
peak_direct=$(cache_run "$dev")
echo "direct mapping: at most $peak_direct KiB of the backing file in the page cache while 16 MiB were written"
"$map" unmap "$n" || fail "unmap $dev failed"
dev=$("$map" map "$img") || fail "map $img (buffered) failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev is not a block device"
peak_buffered=$(cache_run "$dev")
echo "buffered mapping: up to $peak_buffered KiB of the backing file in the page cache"
"$map" unmap "$n" || fail "unmap $dev failed"
[ "$peak_buffered" -ge 8192 ] ||
	fail "a buffered mapping left only $peak_buffered KiB of 16 MiB written in the backing file's page cache: the probe (fincore) cannot tell"
[ "$peak_direct" -le 1024 ] ||
	bad "the direct mapping left up to $peak_direct KiB of the backing file in the page cache (double caching; at most 1024 KiB allowed, buffered: $peak_buffered KiB)"

# 4. A file system on the direct mapping.
echo "=== ext4 on the direct mapping [${SECONDS} s]"
dev=$(map_direct "$img")
n=$(minor_of "$dev")
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 on $dev failed"
mkdir -p "$mnt"
mount -t ext4 "$dev" "$mnt" || fail "mount $dev failed"
cp -a "$LOFI_ROOT/include" "$LOFI_ROOT/Documentation" "$mnt/" || bad "copying a tree into $mnt failed"
for i in 1 2 3 4; do
	head -c $((i * 300000)) /dev/urandom >"$mnt/random.$i"
done
(cd "$mnt" && find . -type f ! -name sums -exec sha256sum {} + >sums) || bad "checksumming the tree failed"
umount "$mnt" || fail "umount $mnt failed"
e2fsck -fn "$dev" >fsck.out 2>&1 || { cat fsck.out; bad "e2fsck -fn of the ext4 on the direct mapping found problems"; }
mount -t ext4 -o ro "$dev" "$mnt" || fail "mount $dev again failed"
(cd "$mnt" && sha256sum --quiet -c sums) || bad "the tree on the direct mapping changed across umount and mount"
diff -r "$LOFI_ROOT/Documentation" "$mnt/Documentation" >/dev/null || bad "the copied tree differs from its source"
umount "$mnt" || fail "umount $mnt failed"
"$map" unmap "$n" || fail "unmap $dev failed"

# 5. Fallback: a file system that refuses O_DIRECT.
echo "=== fallback on ramfs [${SECONDS} s]"
mkdir -p "$ram"
mount -t ramfs ramfs "$ram" || fail "mounting a ramfs failed"
rimg=$ram/buffered.img
head -c 4M /dev/urandom >"$rimg"
if dd if=/dev/zero of="$rimg" bs=4k count=1 oflag=direct conv=notrunc status=none 2>/dev/null; then
	fail "ramfs accepted O_DIRECT: find another file system to show the fallback"
fi
dev=$(map_direct "$rimg")
n=$(minor_of "$dev")
[ "$(direct_refused)" = 1 ] || bad "direct I/O on ramfs (which refuses O_DIRECT) was not reported refused"
fields=$(map_fields "$n")
echo "$dev: $fields"
case $fields in "flags=0x0 block_size=512 "*) ;; *) bad "fields of the refused direct mapping: $fields, want flags=0x0 block_size=512" ;; esac
head -c 1M /dev/urandom >chunk
dd if=chunk of="$dev" bs=64k seek=16 oflag=direct conv=fsync,nocreat status=none || bad "writing to the buffered fallback mapping failed"
cmp -n 1048576 chunk <(dd if="$rimg" bs=64k skip=16 count=16 status=none) || bad "the backing file on ramfs lacks what was written"
"$map" unmap "$n" || fail "unmap $dev failed"
umount "$ram" || fail "umount $ram failed"

# 6. Forced unmap under O_DIRECT writes at queue depth 8.
echo "=== forced unmap under fio [${SECONDS} s]"
dev=$(map_direct "$img")
n=$(minor_of "$dev")
fio --name=dio --filename="$dev" --ioengine=libaio --iodepth=8 --direct=1 --bs=64k \
	--rw=randwrite --time_based --runtime=120 --continue_on_error=none \
	--status-interval=1 >fio.log 2>&1 &
bg_pid=$!
fio_writing() { grep -qE 'issued rwts: total=[0-9]+,[1-9]' fio.log; }
# (fio takes long to start under TCG when the host is busy.)
if ! within 180 fio_writing; then
	running "$bg_pid" && echo "fio runs; its log so far:" || echo "fio exited; its log:"
	cat fio.log
	fail "fio did not start writing to $dev within 180 s"
fi
sleep 1
running "$bg_pid" || fail "fio stopped before the forced unmap: $(tail -n 20 fio.log)"
t0=$(now_ms)
timeout -k 5 30 "$map" unmap "$n" force || fail "the forced unmap of $dev under fio failed or hung (status $?)"
t_unmap=$(($(now_ms) - t0))
echo "forced unmap returned in $(secs "$t_unmap") s"
[ "$t_unmap" -le 10000 ] || bad "the forced unmap under O_DIRECT writes took $(secs "$t_unmap") s (want at most 10 s)"
if ! wait_exit 30 "$bg_pid"; then
	echo "fio still runs 30 s after the forced unmap; kernel stacks:"
	for t in /proc/"$bg_pid"/task/*; do sed 's/^/    /' "$t/stack" 2>/dev/null; done
	fail "fio hung after the forced unmap"
fi
fio_status=0
wait "$bg_pid" || fio_status=$?
bg_pid=
echo "fio exited with status $fio_status $(($(now_ms) - t0)) ms after the unmap began"
if [ "$fio_status" -eq 0 ] || ! grep -qE 'Input/output error|err= *5[,/]' fio.log; then
	tail -n 20 fio.log
	bad "fio did not stop with EIO after the forced unmap (status $fio_status)"
fi
wait_for 10 test ! -e "/sys/block/lofi$n" || bad "lofi$n still exists after fio exited"
bk_umount_wait 5
echo "the backing file system unmounted right after"

[ "$failures" -eq 0 ] || fail "$failures check(s) failed (after ${SECONDS} s)"
unload_lofi
echo "ok: direct I/O granted with the file's alignment, data intact, no double caching, fallback on ramfs, forced unmap under O_DIRECT writes (${SECONDS} s)"
