#!/usr/bin/env bash
# The write cache a device advertises (and so whether the block layer
# sends it flushes) follows its backing file: "write back" for a writable
# mapping of a file that can be synced, "write through" for a read-only
# one, asked for (ro) or the fallback of a file the caller may only read.
# A flush (fsync of the device) of a writable mapping succeeds.
#
# The case the driver must also get right, a writable backing file without
# ->fsync (write through: a flush could only fail), has no instance in the
# test kernel: every file system it has (ext4, fat, iso9660, overlayfs,
# 9p, tmpfs, proc, sysfs, debugfs, tracefs, devtmpfs) either has ->fsync
# (noop_fsync for tmpfs, sysfs) or only offers files that cannot be
# mapped: empty (debugfs, tracefs, /proc) or of a size that is not a
# multiple of 512 bytes (the 256-byte PCI configuration files of
# /proc/bus/pci); block devices all have blkdev_fsync.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

ro_mnt=
cleanup() {
	lofi_teardown
	[ -n "$ro_mnt" ] && umount "$ro_mnt" 2>/dev/null
	return 0
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

# check FILE ASK WANT_MODE WANT_CACHE: map FILE asking for ASK (rw or ro).
check() {
	local file=$1 ro=() dev n mode cache
	[ "$2" = ro ] && ro=(ro)
	shift 2
	dev=$("$map" map "$file" "${ro[@]}") || fail "map $file ${ro[*]} failed"
	n=$(minor_of "$dev")
	mode=$("$map" status "$n" | awk '{print $3}')
	cache=$(cat "/sys/block/lofi$n/queue/write_cache")
	echo "$file ${ro[*]}: mapped $mode, write_cache: $cache"
	[ "$mode" = "$1" ] || bad "$file ${ro[*]}: mapped $mode, want $1"
	[ "$cache" = "$2" ] || bad "$file ${ro[*]}: write_cache '$cache', want '$2'"
	if [ "$mode" = rw ]; then
		# fsync of the device: a flush, served by fsync of the backing file.
		dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct conv=fsync,notrunc,nocreat status=none ||
			bad "$file: a write and fsync of $dev failed"
	fi
	settle
	"$map" unmap "$n" || fail "unmap $n failed"
}

truncate -s 4M "$PWD/rw.img"
check "$PWD/rw.img" rw rw "write back"
check "$PWD/rw.img" ro ro "write through"

# A file the caller may only read: its mapping falls back to read-only.
mkdir -p ro-src ro-view
truncate -s 4M ro-src/only-readable.img
mount --bind ro-src ro-view && ro_mnt=$PWD/ro-view
mount -o remount,bind,ro ro-view || fail "remounting the bind mount read-only failed"
check "$PWD/ro-view/only-readable.img" rw ro "write through"
umount "$ro_mnt" && ro_mnt=

echo "note: no writable backing file without ->fsync exists in the test kernel: that case is not tested here"
[ "$failures" -eq 0 ] || fail "$failures checks failed (see the FAIL lines above)"
unload_lofi
echo "ok: write back for writable mappings, write through for read-only ones"
