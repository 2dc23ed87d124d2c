#!/usr/bin/env bash
# A read-only mapping refuses opens for writing: /dev/lofi/N of an image
# mapped read-only (asked for, or the fallback for a file the caller may
# only read) fails O_WRONLY and O_RDWR opens with EROFS and allows
# O_RDONLY ones; mounting the ext4 file system in it without -o ro still
# succeeds, read-only (mount falls back), and reads its file.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

mnt=$PWD/mnt
ro_mnt=
cleanup() {
	set +e
	mountpoint -q "$mnt" && umount "$mnt"
	lofi_teardown
	[ -n "$ro_mnt" ] && umount "$ro_mnt"
	return 0
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

mkdir -p content "$mnt"
echo "hello from a read-only image" >content/hello.txt
truncate -s 16M "$PWD/fs.img"
mkfs.ext4 -q -F -d content "$PWD/fs.img" || fail "mkfs.ext4 -d failed"

# check FILE ASK: map FILE (asking for ro, or not: rw), which must give
# a read-only mapping, and check its opens and mount.
check() {
	local file=$1 ro=() dev n mode out
	[ "$2" = ro ] && ro=(ro)
	echo "=== $file, asked for $2"
	dev=$("$map" map "$file" "${ro[@]}") || fail "map $file ${ro[*]} failed"
	n=$(minor_of "$dev")
	wait_for 5 test -b "$dev" || fail "$dev did not appear"
	settle
	mode=$("$map" status "$n" | awk '{print $3}')
	[ "$mode" = ro ] || fail "$file asked for $2: mapped $mode, want ro (the test needs a read-only mapping)"
	expect_eq "/sys/block/lofi$n/ro" "$(cat "/sys/block/lofi$n/ro")" 1
	for acc in wo rw; do
		if out=$("$hard" open "$dev" "$acc" 2>&1); then
			bad "opening the read-only $dev for writing ($acc) succeeded"
		else
			echo "open $acc: $out"
			case $out in *EROFS*) ;; *) bad "opening the read-only $dev for writing ($acc): want EROFS, got: $out" ;; esac
		fi
	done
	out=$("$hard" open "$dev" ro 2>&1) || bad "opening the read-only $dev for reading failed: $out"
	if out=$(mount -t ext4 "$dev" "$mnt" 2>&1); then
		echo "mount: ${out:-ok}"
		opts=$(findmnt -no OPTIONS "$mnt")
		echo "mounted with: $opts"
		case ,$opts, in *,ro,*) ;; *) bad "$dev mounted with '$opts', want ro" ;; esac
		expect_eq "the file in the image" "$(cat "$mnt/hello.txt")" "hello from a read-only image"
		umount "$mnt" || fail "umount $mnt failed"
	else
		bad "mounting the read-only $dev failed: $out"
	fi
	settle
	"$map" unmap "$n" || fail "unmap $n failed"
}

check "$PWD/fs.img" ro

# A file the caller may only read (on a read-only bind mount): the map
# falls back to read-only.
mkdir -p ro-view
mount --bind "$PWD" ro-view && ro_mnt=$PWD/ro-view
mount -o remount,bind,ro ro-view || fail "remounting the bind mount read-only failed"
check "$PWD/ro-view/fs.img" rw
umount "$ro_mnt" && ro_mnt=

[ "$failures" -eq 0 ] || fail "$failures checks failed (see the FAIL lines above)"
unload_lofi
echo "ok: read-only mappings refuse opens for writing and mount read-only"
