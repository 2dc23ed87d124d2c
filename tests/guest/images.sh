#!/usr/bin/env bash
# Real file system images work through lofi, as with illumos lofiadm:
#   - ext4 made on /dev/lofiN, a directory tree copied in (files, a
#     symlink, a hard link, a sparse file, odd modes), checksums and a
#     listing recorded; after umount, fsck.ext4 -fn is clean on the device
#     and on the plain image file; unmapped, mapped again, mounted: the same
#     tree, byte for byte;
#   - vfat made with mkfs.vfat on a plain file (no lofi) and filled with
#     mcopy (through lofi if mtools is missing), then mapped and mounted:
#     the same files; a file written through the mount is in the image
#     afterwards and fsck.vfat is clean;
#   - iso9660 made with xorriso (or genisoimage), mapped read-only, twice
#     at once, mounted -t iso9660 from both: the same files; the disk is
#     read-only and the image never changes.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"

cleanup() {
	set +e
	for m in mnt mnt2; do
		mountpoint -q "$m" && umount "$m"
	done
	if lofi_loaded; then
		"$map" unmap-all force >/dev/null 2>&1
		rmmod lofi 2>/dev/null
	fi
}
trap cleanup EXIT

map_file() { # map_file FILE [ro]: map, wait for the node, print the device
	local dev
	dev=$("$map" map "$@") || fail "map $* failed"
	wait_for 5 test -b "$dev" || fail "$dev is not a block device"
	echo "$dev"
}

# sums DIR: sha256 of every regular file, by relative path.
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum); }
# listing DIR: type and mode of everything, size and link count of files,
# symlink targets (not times, nor directory sizes, which differ between
# file systems).
listing() {
	(cd "$1" && {
		find . -mindepth 1 -type f -printf '%y %m %s %n %p\n'
		find . -mindepth 1 ! -type f -printf '%y %m %p -> %l\n'
	} | sort)
}

mkdir mnt mnt2
load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

# The source tree (~9 MB, ~1200 files): the repository's sources, a
# thousand small and sixty larger random files (made here: copying many
# files from the host over 9p is slow), binaries of awkward sizes, a
# symlink, a hard link, a sparse file, odd modes.
mkdir -p src/bin src/deep/a/b/c src/many src/medium
cp -a "$LOFI_ROOT/drivers" "$LOFI_ROOT/scripts" src/
head -c 3M /dev/urandom | split -b 3001 -a 3 - src/many/f
head -c 4M /dev/urandom | split -b 65537 -a 2 - src/medium/m
for s in 0 1 511 512 513 4095 4096 65537 1048579; do
	head -c "$s" /dev/urandom >"src/bin/r$s"
done
echo deep >src/deep/a/b/c/file
ln -s ../bin/r4096 src/deep/link
ln src/bin/r513 src/deep/hardlink
truncate -s 8M src/sparse && printf 'tail' | dd of=src/sparse bs=1 seek=$((8 * 1024 * 1024 - 4)) conv=notrunc status=none
chmod 0600 src/bin/r1
chmod 0751 src/deep/a
sums src >src.sums
listing src >src.list
echo "source tree: $(wc -l <src.sums) files, $(du -sh src | cut -f1) (${SECONDS}s)"

# 1. ext4 on /dev/lofiN.
echo "=== ext4 (${SECONDS}s)"
truncate -s 64M ext4.img
dev=$(map_file "$PWD/ext4.img")
mkfs.ext4 -q "$dev" || fail "mkfs.ext4 on $dev failed"
mount -t ext4 "$dev" mnt || fail "mount $dev failed"
cp -a src/. mnt/ || fail "copying the tree into the ext4 mount failed"
rm -rf mnt/lost+found
diff <(sums mnt) src.sums || fail "ext4: checksums differ right after the copy"
diff <(listing mnt) src.list || fail "ext4: the listing differs right after the copy"
umount mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 -fn $dev is not clean"
"$map" unmap "$dev" || fail "unmap $dev failed"
fsck.ext4 -fn "$PWD/ext4.img" || fail "fsck.ext4 -fn of the image file is not clean"
dev=$(map_file "$PWD/ext4.img")
mount -t ext4 "$dev" mnt || fail "mounting the remapped ext4 image failed"
diff <(sums mnt) src.sums || fail "ext4: checksums differ after unmap and remap"
diff <(listing mnt) src.list || fail "ext4: the listing differs after unmap and remap"
umount mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 -fn $dev is not clean after the second mount"
"$map" unmap "$dev" || fail "unmap $dev failed"
rm -f ext4.img
echo "ok: ext4"

# 2. vfat, made without lofi. vfat keeps neither symlinks nor modes: plain
# files only.
echo "=== vfat (${SECONDS}s)"
mkdir -p fat/sub/deeper
cp src/bin/* fat/
cp -r src/medium fat/
cp -a "$LOFI_ROOT/scripts/." fat/sub/
cp src/deep/a/b/c/file fat/sub/deeper/
find fat -type l -delete
truncate -s 32M vfat.img
mkfs.vfat -n LOFIVFAT "$PWD/vfat.img" >/dev/null || fail "mkfs.vfat on a plain file failed"
if command -v mcopy >/dev/null; then
	mcopy -s -i "$PWD/vfat.img" fat/* ::/ || fail "mcopy into vfat.img failed"
else
	echo "note: no mtools; filling the vfat image through lofi"
	dev=$(map_file "$PWD/vfat.img")
	mount -t vfat "$dev" mnt || fail "mount vfat $dev failed"
	cp -r fat/. mnt/
	umount mnt
	"$map" unmap "$dev" || fail "unmap $dev failed"
fi
dev=$(map_file "$PWD/vfat.img")
mount -t vfat "$dev" mnt || fail "mounting the vfat image through $dev failed"
diff <(sums mnt) <(sums fat) || fail "vfat: files read through lofi differ"
head -c 300000 /dev/urandom >new.bin
cp new.bin mnt/NEWFILE.BIN
umount mnt
fsck.vfat -n "$dev" >fsck.log 2>&1 || { cat fsck.log; fail "fsck.vfat -n $dev is not clean"; }
"$map" unmap "$dev" || fail "unmap $dev failed"
fsck.vfat -n "$PWD/vfat.img" >fsck.log 2>&1 || { cat fsck.log; fail "fsck.vfat -n of the image file is not clean"; }
if command -v mcopy >/dev/null; then
	mcopy -i "$PWD/vfat.img" ::/NEWFILE.BIN new.back || fail "mcopy out of vfat.img failed"
else
	dev=$(map_file "$PWD/vfat.img" ro)
	mount -t vfat -o ro "$dev" mnt || fail "mount vfat $dev failed"
	cp mnt/NEWFILE.BIN new.back
	umount mnt
	"$map" unmap "$dev" || fail "unmap $dev failed"
fi
cmp new.bin new.back || fail "vfat: the file written through lofi is not in the image"
rm -f vfat.img
echo "ok: vfat"

# 3. iso9660, read-only.
echo "=== iso9660 (${SECONDS}s)"
if command -v xorriso >/dev/null; then
	mkiso=(xorriso -as mkisofs)
elif command -v genisoimage >/dev/null; then
	mkiso=(genisoimage)
elif command -v mkisofs >/dev/null; then
	mkiso=(mkisofs)
else
	fail "no ISO 9660 image tool (xorriso, genisoimage or mkisofs): install xorriso on the host (DEBIAN_PACKAGES in scripts/versions.env)"
fi
mkdir iso
cp -a src/bin src/deep src/many src/medium src/drivers iso/
"${mkiso[@]}" -quiet -R -J -V LOFIISO -o "$PWD/image.iso" iso || fail "${mkiso[*]} failed"
iso_sum=$(sha256sum <image.iso)
dev=$(map_file "$PWD/image.iso" ro)
dev2=$(map_file "$PWD/image.iso" ro)
[ "$dev" != "$dev2" ] || fail "two read-only mappings of one file got the same device"
n=${dev#/dev/lofi}
expect_eq "status of the ISO mapping" "$("$map" status "$dev")" "$n $dev ro $PWD/image.iso"
expect_eq "blockdev --getro $dev" "$(blockdev --getro "$dev")" 1
mount -t iso9660 -o ro "$dev" mnt || fail "mount -t iso9660 $dev failed"
mount -t iso9660 -o ro "$dev2" mnt2 || fail "mount -t iso9660 $dev2 failed"
diff <(sums mnt) <(sums iso) || fail "iso9660: files read through $dev differ"
diff <(sums mnt2) <(sums iso) || fail "iso9660: files read through $dev2 differ"
expect_eq "symlink on the ISO" "$(readlink mnt/deep/link)" ../bin/r4096
umount mnt
umount mnt2
if dd if=/dev/zero of="$dev" bs=2048 count=1 oflag=direct conv=notrunc,nocreat status=none 2>/dev/null; then
	fail "a write to the read-only ISO mapping succeeded"
fi
"$map" unmap "$dev" || fail "unmap $dev failed"
"$map" unmap "$dev2" || fail "unmap $dev2 failed"
expect_eq "sha256 of the ISO image" "$(sha256sum <image.iso)" "$iso_sum"
echo "ok: iso9660"

unload_lofi
echo "ok: ext4, vfat and iso9660 images through lofi (${SECONDS}s)"
