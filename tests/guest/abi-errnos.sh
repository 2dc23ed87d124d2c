#!/usr/bin/env bash
# The ioctl ABI answers every case of the driver contract with the exact
# errno, for 64-bit callers and for 32-bit ones (compat ioctl):
# tests/guest/prog/lofi_abi_test.c has one case per errno and per success
# path (ENOTTY, EPERM, EFAULT, EINVAL, ERANGE, ENOENT, EACCES, EBUSY,
# EEXIST, ENXIO, EINTR, read-only mappings, li_cleanup, the map fields
# (li_flags, li_block_size, li_offset, li_sizelimit: EINVAL unless default
# or LOFI_FLAG_DIRECT_IO on a map, ignored otherwise; a direct map returns
# li_flags 0 or LOFI_FLAG_DIRECT_IO and its block size), the
# reserved LOFI_SET_CAPACITY (ENOTTY), forced unmap with LOFI_DKIOCSTATE,
# HDIO_GETGEO) and runs them all.  Around it, at shell level:
# a file on a read-only mount maps read-only (EROFS fallback) and cannot be
# written through; a block device (a loop device) works as backing store;
# lofi_max_files is bounded to 1..65536 at insmod, reported by
# GET_MAXMINOR, and with lofi_max_files=4, N = 1..4 are handed out in order
# and the fifth map fails with EAGAIN.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

abi64=$prog_dir/lofi_abi_test
abi32=$prog_dir/lofi_abi_test-32
map=$prog_dir/lofi_map
need_progs "$abi64" "$map"

loopdev=
cleanup() {
	set +e
	mountpoint -q ro && umount ro
	if lofi_loaded; then
		"$map" unmap-all force >/dev/null 2>&1
		rmmod lofi 2>/dev/null
	fi
	[ -z "$loopdev" ] || losetup -d "$loopdev"
}
trap cleanup EXIT

# run_suite LABEL CMD...: run one lofi_abi_test; every case must pass.
run_suite() {
	local label=$1 status=0
	shift
	echo "=== $label: $*"
	"$@" >"$label.log" 2>&1 || status=$?
	cat "$label.log"
	if [ "$status" -ne 0 ]; then
		fail "$label: $(grep -c '^not ok' "$label.log") failed check(s); first: $(grep -m1 '^not ok' "$label.log" || tail -n 1 "$label.log")"
	fi
	grep -q '^# lofi_abi_test: all cases passed$' "$label.log" || fail "$label: did not run to the end"
}

# The uid-65534 child of the credentials case must reach its files.
chmod 0711 "$LOFI_SCRATCH"

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

# 1. The errno suite, 64-bit and 32-bit.
run_suite abi64 "$abi64" --max 128 "$LOFI_SCRATCH/abi64"
missing32=
if [ -x "$abi32" ]; then
	run_suite abi32 "$abi32" --max 128 "$LOFI_SCRATCH/abi32"
	grep -q '^# lofi_abi_test: 32-bit caller' abi32.log || fail "$abi32 is not a 32-bit program"
else
	# Run everything else first, then fail: the 32-bit caller is required.
	missing32="$abi32 missing: the host needs gcc-multilib to build the 32-bit test programs (Debian package gcc-multilib in DEBIAN_PACKAGES, scripts/versions.env)"
	echo "FAIL (deferred): $missing32"
fi

# 2. Read-only fallback: the read-write open fails with EROFS, so the file
# is mapped read-only without being asked to, and the disk is read-only.
echo "=== read-only mount"
mkdir ro
mount -t tmpfs -o size=4m lofi-ro ro
head -c 1M /dev/urandom >ro/img
cp ro/img ro.ref
mount -o remount,ro ro
dev=$("$map" map "$PWD/ro/img") || fail "map of a file on a read-only mount failed"
n=${dev#/dev/lofi}
expect_eq "status of the mapping" "$("$map" status "$dev")" "$n $dev ro $PWD/ro/img"
expect_eq "blockdev --getro $dev" "$(blockdev --getro "$dev")" 1
expect_eq "/sys/block/lofi$n/ro" "$(cat "/sys/block/lofi$n/ro")" 1
cmp "$dev" ro.ref || fail "reading through the read-only mapping differs from the file"
if dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct conv=notrunc,nocreat status=none 2>dd.err; then
	fail "a write to the read-only mapping succeeded"
fi
grep -qE 'Operation not permitted|Read-only file system|Permission denied' dd.err ||
	fail "write to the read-only mapping: unexpected error: $(cat dd.err)"
"$map" unmap "$dev" || fail "unmap $dev failed"
cmp ro/img ro.ref || fail "the read-only backing file changed"
umount ro
echo "ok: a file on a read-only mount maps read-only and refuses writes"

# 3. A block device as backing store.
echo "=== block device backing"
truncate -s 8M loop.img
loopdev=$(losetup -f --show "$PWD/loop.img") || fail "losetup failed (is CONFIG_BLK_DEV_LOOP in the test kernel?)"
dev=$("$map" map "$loopdev") || fail "map of the block device $loopdev failed"
expect_eq "size of a lofi disk on an 8 MiB loop device" "$(blockdev --getsize64 "$dev")" 8388608
head -c 1M /dev/urandom >loop.ref
dd if=loop.ref of="$dev" bs=1M seek=2 oflag=direct conv=fsync,notrunc,nocreat status=none || fail "write through $dev failed"
cmp loop.ref <(dd if="$dev" bs=1M skip=2 count=1 iflag=direct status=none) || fail "read-back through $dev differs"
"$map" unmap "$dev" || fail "unmap $dev failed"
losetup -d "$loopdev"
loopdev=
cmp loop.ref <(dd if=loop.img bs=1M skip=2 count=1 status=none) || fail "the data did not reach the loop device's file"
echo "ok: a loop device works as backing store"
unload_lofi

# 4. lofi_max_files: its bounds, and small values.
echo "=== lofi_max_files"
for bad in 0 65537; do
	if insmod "$LOFI_KO" lofi_max_files=$bad 2>/dev/null; then
		rmmod lofi
		fail "insmod lofi_max_files=$bad succeeded (allowed: 1..65536)"
	fi
	! lofi_loaded || fail "lofi is loaded after a refused insmod lofi_max_files=$bad"
done

load_lofi lofi_max_files=65536
expect_eq "GET_MAXMINOR with lofi_max_files=65536" "$("$map" maxminor)" 65536
truncate -s 1M max.img
expect_eq "map-minor 65536" "$("$map" map-minor 65536 "$PWD/max.img")" /dev/lofi65536
wait_for 5 test -b /dev/lofi65536 || fail "/dev/lofi65536 is not a block device"
"$map" unmap 65536 || fail "unmap 65536 failed"
unload_lofi

load_lofi lofi_max_files=1
expect_eq "GET_MAXMINOR with lofi_max_files=1" "$("$map" maxminor)" 1
expect_eq "the only N" "$("$map" map "$PWD/max.img")" /dev/lofi1
if "$map" map "$PWD/loop.img" 2>map.err; then fail "a second map with lofi_max_files=1 succeeded"; fi
grep -q EAGAIN map.err || fail "second map with lofi_max_files=1: want EAGAIN, got: $(cat map.err)"
"$map" unmap /dev/lofi1 || fail "unmap failed"
unload_lofi

load_lofi lofi_max_files=4
expect_eq "GET_MAXMINOR with lofi_max_files=4" "$("$map" maxminor)" 4
for i in 1 2 3 4; do
	truncate -s 1M "fill$i.img"
	expect_eq "map #$i" "$("$map" map "$PWD/fill$i.img")" "/dev/lofi$i"
	wait_for 5 test -b "/dev/lofi$i" || fail "/dev/lofi$i is not a block device"
done
truncate -s 1M fill5.img
if "$map" map "$PWD/fill5.img" 2>map.err; then fail "a fifth map with lofi_max_files=4 succeeded"; fi
grep -q EAGAIN map.err || fail "fifth map with lofi_max_files=4: want EAGAIN, got: $(cat map.err)"
expect_eq "mappings after EAGAIN" "$("$map" list | awk '{print $1}' | tr '\n' ' ')" "1 2 3 4 "
for i in 1 2 3 4; do
	"$map" unmap "$PWD/fill$i.img" || fail "unmap fill$i.img failed"
done
expect_eq "mappings after unmapping all" "$("$map" list)" ""
# The C cases that need a small lofi_max_files, from both callers.
run_suite abi64-max4 "$abi64" --max 4 "$LOFI_SCRATCH/abi64-max4" eagain erange enxio map_success
if [ -x "$abi32" ]; then
	run_suite abi32-max4 "$abi32" --max 4 "$LOFI_SCRATCH/abi32-max4" eagain erange enxio map_success
fi
unload_lofi

[ -z "$missing32" ] || fail "$missing32"
echo "ok: lofi ABI errnos (64-bit and 32-bit callers), read-only fallback, block device backing, lofi_max_files"
