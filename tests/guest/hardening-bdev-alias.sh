#!/usr/bin/env bash
# A block device mapped by one path is found by any other path to the same
# device: a loop device is mapped as /dev/loopX, then looked up
# (LOFI_GET_MINOR) and unmapped by name (LOFI_UNMAP_FILE) through a second
# device node of the same device (mknod) and through a symlink to
# /dev/loopX (and /dev/block/MAJ:MIN if udev made it); a map through the
# alias while mapped is refused (EBUSY: the same device).  Controls: the
# exact path, and a symlink to a regular file.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

loopdev=
cleanup() {
	lofi_teardown
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	return 0
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

truncate -s 16M "$PWD/loop-backing.img"
loopdev=$(losetup -f --show "$PWD/loop-backing.img") || fail "losetup failed"
maj=$((0x$(stat -c %t "$loopdev")))
min=$((0x$(stat -c %T "$loopdev")))
mknod "$PWD/alias-node" b "$maj" "$min" || fail "mknod of a second node for $loopdev failed"
ln -s "$loopdev" "$PWD/alias-link"
truncate -s 4M "$PWD/regular.img"
ln -s "$PWD/regular.img" "$PWD/regular-link"
echo "$loopdev is $maj:$min; aliases: $PWD/alias-node, $PWD/alias-link"


# check MAPPED ALIAS: map MAPPED, then ALIAS must find it, must not map
# again, and must unmap it.
check() {
	local mapped=$1 alias=$2 dev n got err
	dev=$("$map" map "$mapped") || fail "map $mapped failed"
	n=$(minor_of "$dev")
	settle
	if got=$("$map" minor "$alias" 2>minor.err); then
		[ "$got" = "$n" ] || bad "GET_MINOR $alias: got $got, want $n (the mapping of $mapped)"
	else
		bad "GET_MINOR $alias did not find the mapping $n of $mapped: $(cat minor.err)"
	fi
	if "$map" map "$alias" >map2.out 2>map2.err; then
		bad "mapping $alias while $mapped is mapped succeeded ($(cat map2.out)): the same device mapped twice"
		"$map" unmap "$(cat map2.out)" || true
	elif ! grep -q EBUSY map2.err; then
		bad "mapping $alias while $mapped is mapped: want EBUSY, got: $(cat map2.err)"
	fi
	if "$map" unmap "$alias" 2>unmap.err; then
		echo "ok: $alias found mapping $n of $mapped and unmapped it"
	else
		err=$(cat unmap.err)
		bad "UNMAP_FILE $alias did not unmap mapping $n of $mapped: $err"
		"$map" unmap "$n" || fail "unmapping $n by number failed too"
	fi
	expect_eq "mappings after unmapping through $alias" "$("$map" list)" ""
}

echo "=== controls"
check "$loopdev" "$loopdev"
check "$PWD/regular.img" "$PWD/regular-link"
controls_failed=$failures
echo "=== aliases of $loopdev"
check "$loopdev" "$PWD/alias-node"
check "$loopdev" "$PWD/alias-link"
if [ -e "/dev/block/$maj:$min" ]; then
	check "$loopdev" "/dev/block/$maj:$min"
else
	echo "note: no /dev/block/$maj:$min (udev did not make it): that case is skipped"
fi
# And the other way round: mapped through the second node, found by the real one.
check "$PWD/alias-node" "$loopdev"

[ "$controls_failed" -eq 0 ] || fail "$controls_failed failures in the controls (exact path, symlink to a regular file): the test itself is wrong"
[ "$failures" -eq 0 ] || fail "$failures lookups of a mapped block device by another path to it went wrong"
unload_lofi
echo "ok: the mapped block device found and unmapped through every path to it"
