#!/usr/bin/env bash
# Compressed images end to end, for every algorithm (gzip, gzip-6, gzip-9,
# lzma, zstd, lz4):
#   - an ext4 image (made with mkfs.ext4 -d from a known tree) and an
#     iso9660 image (xorriso) are compressed in place with lofiadm -C;
#     the listing says Compressed(ALG), the JSON compressed/algorithm;
#   - mapped (read-write asked: the mapping is read-only all the same),
#     mounted read-only: every file's checksum matches the tree; sysfs
#     says the algorithm; the disk refuses writes (EROFS on open, blockdev
#     --getro 1); random reads of random sizes match the original image;
#   - unmapped, lofiadm -U restores the original byte for byte, and the
#     uncompressed image maps read-write again;
#   - the segment size option (-s 4k, -s 512 which stores every segment)
#     and lofiadm's refusals: compressing a mapped file, compressing twice,
#     uncompressing a plain file.
# time-limit: 900
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

cleanup() {
	set +e
	mountpoint -q mnt && umount mnt
	lofiadm_cleanup
}
trap cleanup EXIT

# sums DIR: sha256 of every regular file, by relative path.
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum); }

# random_reads DEV ORIG COUNT: COUNT reads at random offsets, of random
# sizes (512 B .. 256 KiB, some unaligned to segments), compared with the
# original image (after the device's page cache is dropped, so that the
# reads reach the driver).
random_reads() {
	python3 - "$@" <<'PY'
import os, random, sys
dev, orig, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(orig)
rng = random.Random(size)
with open(orig, "rb") as o:
    buffered = os.open(dev, os.O_RDONLY)
    for i in range(count):
        length = rng.choice([512, 4096, 65536, 262144, 512 * rng.randint(1, 300)])
        length = min(length, size)
        pos = 512 * rng.randrange(0, (size - length) // 512 + 1)
        o.seek(pos)
        want = o.read(length)
        got = os.pread(buffered, length, pos)
        if got != want:
            sys.exit(f"mismatch at {pos}+{length} (read {i})")
    os.close(buffered)
print(f"{count} random reads matched")
PY
}

mkdir mnt tree
# The tree: text (compresses well), random bytes (does not: stored
# segments), zeros, a few hundred small files and some deeper paths.
seq 1 40000 | sed 's/$/ lines of text that compress rather well/' >tree/text
head -c 1500000 /dev/urandom >tree/random
head -c 700000 /dev/zero >tree/zeros
mkdir -p tree/small tree/deep/a/b/c
for i in $(seq 1 200); do
	echo "file $i $RANDOM" >"tree/small/f$i"
done
cp "$LOFI_ROOT/drivers/block/lofi/"*.rs tree/deep/a/b/c/
want=$(sums tree)

mkfs.ext4 -q -F -b 4096 -d tree ext4.img 16M
xorriso -as mkisofs -quiet -R -J -o iso.img tree 2>/dev/null
# Multiples of 512, as lofiadm and the driver require.
truncate -s %512 iso.img

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

for alg in gzip gzip-6 gzip-9 lzma zstd lz4; do
	for kind in ext4 iso; do
		cp "$kind.img" c.img
		ok -C "$alg" c.img
		[ "$(head -c 6 c.img | tr -d '\0')" = "${alg:0:6}" ] || fail "$alg $kind: the header does not name $alg"
		expect_eq "$alg $kind: compressed size" "$(($(stat -c %s c.img) % 512))" 0
		[ "$(stat -c %s c.img)" -lt "$(stat -c %s "$kind.img")" ] || fail "$alg $kind: no smaller"

		ok -a "$PWD/c.img"
		dev=$OUT
		node=$(readlink -f "$dev")
		name=${node#/dev/}
		expect_listing "$(row "$dev" "$PWD/c.img" "Compressed($alg)")"
		ok --json
		expect_eq "$alg $kind: json" "$(python3 -c 'import json,sys; m=json.load(sys.stdin)[0]; print(m["compressed"], m["algorithm"], m["readonly"])' <<<"$OUT")" "True $alg True"
		expect_eq "$alg $kind: sysfs algorithm" "$(cat "/sys/block/$name/lofi/algorithm")" "$alg"
		expect_eq "$alg $kind: sysfs readonly" "$(cat "/sys/block/$name/lofi/readonly")" 1
		expect_eq "$alg $kind: getro" "$(blockdev --getro "$node")" 1
		expect_eq "$alg $kind: size" "$(blockdev --getsize64 "$node")" "$(stat -c %s "$kind.img")"
		if dd if=/dev/zero of="$node" bs=4k count=1 conv=notrunc,nocreat 2>err; then
			fail "$alg $kind: a write to the compressed disk succeeded"
		fi
		grep -q "Read-only file system" err || fail "$alg $kind: write refused how? $(cat err)"

		mount -o ro -t "$([ "$kind" = ext4 ] && echo ext4 || echo iso9660)" "$node" mnt
		expect_eq "$alg $kind: checksums" "$(sums mnt)" "$want"
		umount mnt
		blockdev --flushbufs "$node"
		random_reads "$node" "$kind.img" 150 >/dev/null || fail "$alg $kind: random reads differ"
		cmp "$node" "$kind.img" || fail "$alg $kind: the device differs from the image"

		# Compressing or uncompressing a mapped file is refused.
		expect_error "$PWD/c.img must be unmapped before uncompressing" -U c.img
		ok -d "$dev"
		ok -U c.img
		cmp c.img "$kind.img" || fail "$alg $kind: -U did not restore the image"
		echo "ok $alg $kind"
	done
done

# Segment sizes: 4 KiB, and 512 bytes (at most 2048: every segment stored).
for seg in 4k 512; do
	cp ext4.img c.img
	ok -C lzma -s "$seg" c.img
	ok -a "$PWD/c.img"
	dev=$OUT
	cmp "$dev" ext4.img || fail "-s $seg: the device differs from the image"
	ok -d "$dev"
	ok -U c.img
	cmp c.img ext4.img || fail "-s $seg: -U did not restore the image"
done

# Refusals.
cp ext4.img c.img
ok -a "$PWD/c.img"
expect_error "$PWD/c.img must be unmapped before compressing" -C c.img
ok -d "$PWD/c.img"
ok -C zstd c.img
expect_error "$PWD/c.img is already compressed" -C c.img
ok -U c.img
expect_error "$PWD/c.img is not compressed" -U c.img
# The uncompressed image is an ordinary read-write mapping again.
ok -a "$PWD/c.img"
dev=$OUT
expect_listing "$(row "$dev" "$PWD/c.img" "-")"
ok -d "$dev"

unload_lofi
