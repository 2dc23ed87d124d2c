#!/usr/bin/env bash
# lofiadm --direct-io against the real module: --direct-io=off maps with
# buffered I/O; on a file system that cannot do direct I/O the mapping is
# made with buffered I/O and lofiadm warns and succeeds; on ext4 the
# mapping uses direct I/O (listing: DirectIO, JSON: direct_io true), works,
# and its logical block size is the file's direct I/O alignment (512 on a
# disk with 512-byte sectors, 4096 on one with 4096-byte sectors).
#
# The file systems: ext4 on loop devices of 512- and 4096-byte sectors,
# and ramfs, whose files have no direct I/O (no ->direct_IO, so O_DIRECT
# is EINVAL). tmpfs and the guest's 9p root both accept O_DIRECT, so they
# cannot stand for a file system without it.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

loops=()
mounts=()
cleanup() {
	local m l
	lofiadm_cleanup
	for m in "${mounts[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	for l in "${loops[@]}"; do
		losetup -d "$l"
	done
	return 0
}
trap cleanup EXIT

# ext4_on_loop DIR SECTOR_SIZE: ext4 on a new loop device with that
# logical block size, mounted at DIR.
ext4_on_loop() {
	local loop
	truncate -s 64M "$1.fs"
	loop=$(losetup -f --show -b "$2" "$1.fs") || fail "losetup -b $2 $1.fs failed"
	loops+=("$loop")
	expect_eq "logical block size of $loop" "$(blockdev --getss "$loop")" "$2"
	mkfs.ext4 -q -F -b 4096 "$loop" || fail "mkfs.ext4 $loop failed"
	mkdir "$1"
	mount -t ext4 "$loop" "$1" || fail "mount $loop $1 failed"
	mounts+=("$PWD/$1")
}

# expect_json N:FILE:READONLY:DIRECT_IO:BLOCK_SIZE...: the --json listing,
# with the files relative to $S and the booleans as 0 or 1.
expect_json() {
	ok --json
	python3 - "$OUT" "$S" "$@" <<'PY' || fail "JSON listing is wrong: $OUT"
import json, sys
got = json.loads(sys.argv[1])
s = sys.argv[2]
want = []
for spec in sys.argv[3:]:
    n, f, ro, dio, bs = spec.split(":")
    want.append({"device": f"/dev/lofi/{n}", "node": f"/dev/lofi{n}", "number": int(n),
                 "file": f"{s}/{f}", "readonly": ro == "1", "compressed": False, "algorithm": None,
                 "labeled": False, "partitions": [],
                 "direct_io": dio == "1", "block_size": int(bs), "offset": 0, "sizelimit": 0})
assert got == want, f"got {got}\nwant {want}"
PY
}

# ok_warned WARNING ARGS...: lofiadm must succeed (status 0) and print
# exactly "lofiadm: WARNING" on stderr; its output is in OUT.
ok_warned() {
	local warning=$1
	shift
	run "$@"
	[ "$RC" -eq 0 ] || fail "lofiadm $*: exit status $RC: $ERR"
	expect_eq "stderr of lofiadm $*" "$ERR" "lofiadm: $warning"
}

# round_trip DEV FILE: 1 MiB written through DEV reads back the same,
# through DEV and in FILE.
round_trip() {
	head -c 1M /dev/urandom >ref
	dd if=ref of="$1" bs=64k conv=fsync status=none || fail "writing $1 failed"
	cmp ref <(dd if="$1" bs=64k count=16 iflag=direct status=none) || fail "$1 reads back other data"
	cmp -n 1048576 ref "$2" || fail "what was written through $1 is not in $2"
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
S=$PWD
ext4_on_loop e512 512
ext4_on_loop e4k 4096
mkdir rfs
mount -t ramfs ramfs rfs || fail "mount -t ramfs failed"
mounts+=("$S/rfs")
for f in e512/a.img e512/b.img e512/c.img e4k/d.img rfs/r.img rfs/s.img; do
	truncate -s 4M "$f"
done

echo "=== --direct-io=off: buffered I/O"
ok --direct-io=off -a e512/a.img
expect_eq "lofiadm --direct-io=off -a e512/a.img" "$OUT" /dev/lofi/1
expect_listing "$(row /dev/lofi/1 "$S/e512/a.img" -)"
expect_json 1:e512/a.img:0:0:512

echo "=== a file system without direct I/O (ramfs): buffered, with a warning"
no_dio="direct I/O is not available; mapped with buffered I/O"
ok_warned "$S/rfs/r.img: $no_dio" --direct-io -a rfs/r.img
expect_eq "lofiadm --direct-io -a rfs/r.img" "$OUT" /dev/lofi/2
[ -b /dev/lofi/2 ] || fail "/dev/lofi/2 is not a block device right after lofiadm -a"
ok_warned "$S/rfs/s.img: $no_dio" -r -a rfs/s.img /dev/lofi/4 --direct-io=on
expect_eq "lofiadm -r -a rfs/s.img /dev/lofi/4 --direct-io=on" "$OUT" ""
expect_eq "logical block size of /dev/lofi/2" "$(blockdev --getss /dev/lofi/2)" 512
round_trip /dev/lofi/2 rfs/r.img
expect_listing \
	"$(row /dev/lofi/1 "$S/e512/a.img" -)" \
	"$(row /dev/lofi/2 "$S/rfs/r.img" -)" \
	"$(row /dev/lofi/4 "$S/rfs/s.img" Readonly)"
expect_json 1:e512/a.img:0:0:512 2:rfs/r.img:0:0:512 4:rfs/s.img:1:0:512

echo "=== ext4, 512-byte sectors: direct I/O"
ok --direct-io -a e512/b.img
expect_eq "lofiadm --direct-io -a e512/b.img" "$OUT" /dev/lofi/3
expect_eq "logical block size of /dev/lofi/3" "$(blockdev --getss /dev/lofi/3)" 512
round_trip /dev/lofi/3 e512/b.img
ok -r --direct-io -a e512/c.img /dev/lofi/7
expect_eq "lofiadm -r --direct-io -a e512/c.img /dev/lofi/7" "$OUT" ""
expect_eq "blockdev --getro /dev/lofi/7" "$(blockdev --getro /dev/lofi/7)" 1

echo "=== ext4, 4096-byte sectors: direct I/O, 4096-byte blocks"
ok --direct-io=on -a e4k/d.img
expect_eq "lofiadm --direct-io=on -a e4k/d.img" "$OUT" /dev/lofi/5
expect_eq "logical block size of /dev/lofi/5" "$(blockdev --getss /dev/lofi/5)" 4096
round_trip /dev/lofi/5 e4k/d.img

echo "=== the listing and the queries"
expect_listing \
	"$(row /dev/lofi/1 "$S/e512/a.img" -)" \
	"$(row /dev/lofi/2 "$S/rfs/r.img" -)" \
	"$(row /dev/lofi/3 "$S/e512/b.img" DirectIO)" \
	"$(row /dev/lofi/4 "$S/rfs/s.img" Readonly)" \
	"$(row /dev/lofi/5 "$S/e4k/d.img" DirectIO)" \
	"$(row /dev/lofi/7 "$S/e512/c.img" Readonly,DirectIO)"
expect_json 1:e512/a.img:0:0:512 2:rfs/r.img:0:0:512 3:e512/b.img:0:1:512 \
	4:rfs/s.img:1:0:512 5:e4k/d.img:0:1:4096 7:e512/c.img:1:1:512
ok e4k/d.img
expect_eq "lofiadm e4k/d.img" "$OUT" /dev/lofi/5
ok /dev/lofi/3
expect_eq "lofiadm /dev/lofi/3" "$OUT" "$S/e512/b.img"

echo "=== a direct I/O file cannot be mapped again writable"
expect_error "could not map file $S/e512/b.img: Device or resource busy" --direct-io -a e512/b.img

echo "=== unmap"
for dev in 1 2 3 4 5 7; do
	ok -d /dev/lofi/$dev
done
expect_listing
# Every backing file is closed: the file systems unmount.
for m in "${mounts[@]}"; do
	umount "$m" || fail "umount $m failed after the unmaps"
done
mounts=()
unload_lofi
echo "ok: lofiadm --direct-io, its fallback, listing and JSON"
