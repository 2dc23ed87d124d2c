#!/usr/bin/env bash
# lofi's I/O is charged to the cgroup of whoever submitted it, as loop's
# is: the memory cgroup for the backing file's page cache, the io cgroup
# for the backing device's I/O (cgroup v2, memory and io controllers
# enabled for the child cgroups; the backing file on ext4 on a loop
# device). Each measure is first shown to work without lofi:
#  - memcg: 64 MiB written from a child cgroup straight into a file on the
#    backing ext4 puts at least 48 MiB in that cgroup's memory.stat "file";
#    64 MiB written from another child cgroup to a buffered lofi mapping
#    with dd oflag=direct (so lofi's own device page cache is not used) must
#    do the same: the backing file's page cache is charged to the writer,
#    not to lofi's worker in the root cgroup;
#  - blkcg: a 4 MiB O_DIRECT write from a child cgroup straight into a
#    file on the backing ext4 shows at least 4 MiB written to the backing
#    loop device in that cgroup's io.stat; so must a 4 MiB O_DIRECT write
#    from another child cgroup through a direct lofi mapping of a file
#    there (the backing device's I/O is charged to the writer, so io.max
#    and io.weight apply to it), with no timing involved.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"
# shellcheck source=tests/guest/datapath-lib.sh
. "$LOFI_ROOT/tests/guest/datapath-lib.sh"

cgroot=/sys/fs/cgroup
cgs=()
cleanup() {
	set +e
	lofi_teardown
	bk_teardown
	for cg in "${cgs[@]}"; do rmdir "$cg" 2>/dev/null; done
}
trap cleanup EXIT

# cgroup v2 at /sys/fs/cgroup, memory and io for the children.
if ! grep -q "^[^ ]* $cgroot cgroup2 " /proc/mounts; then
	mkdir -p "$cgroot"
	mount -t cgroup2 none "$cgroot" || fail "mounting cgroup2 at $cgroot failed"
fi
echo "cgroup2 controllers: $(cat "$cgroot/cgroup.controllers")"
for c in memory io; do
	grep -qw "$c" "$cgroot/cgroup.controllers" || fail "the $c controller is not available (CONFIG_MEMCG, CONFIG_BLK_CGROUP)"
done
echo "+memory +io" >"$cgroot/cgroup.subtree_control" || fail "enabling memory and io for the child cgroups failed"

# new_cg NAME: a fresh child cgroup; prints its path.
new_cg() {
	local cg=$cgroot/lofi-test-$1
	[ ! -d "$cg" ] || rmdir "$cg" || fail "a stale $cg cannot be removed"
	mkdir "$cg" || fail "mkdir $cg failed"
	echo "$cg"
}
# in_cg CG CMD...: run CMD in cgroup CG.
in_cg() {
	local cg=$1
	shift
	(echo "$BASHPID" >"$cg/cgroup.procs" && exec "$@")
}
# file_kib CG: the page cache charged to CG (memory.stat "file"), in KiB.
file_kib() { echo $(($(awk '$1 == "file" { print $2 }' "$1/memory.stat") / 1024)); }
# wbytes CG MAJ:MIN: the bytes CG has written to that device (io.stat).
wbytes() {
	awk -v d="$2" 'BEGIN { n = 0 }
		$1 == d { for (i = 2; i <= NF; i++) if ($i ~ /^wbytes=/) n = substr($i, 8) }
		END { print n }' "$1/io.stat"
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
dp_ext4_setup 320M
loop_devt=$(lsblk -dno MAJ:MIN "$bk_loop" | tr -d ' ')
echo "backing ext4 on $bk_loop ($loop_devt)"

# 1. memcg.
echo "=== memory cgroup: the backing file's page cache [${SECONDS} s]"
cg=$(new_cg mem-control)
cgs+=("$cg")
in_cg "$cg" dd if=/dev/zero of="$bk_mnt/control" bs=1M count=64 status=none || fail "writing $bk_mnt/control failed"
control=$(file_kib "$cg")
echo "64 MiB written into a file from $cg: memory.stat file $control KiB"
[ "$control" -ge 49152 ] || fail "64 MiB written from a cgroup charged it only $control KiB of page cache: the probe cannot tell"

img=$bk_mnt/mem.img
truncate -s 96M "$img"
dev=$("$map" map "$img") || fail "map $img failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev is not a block device"
settle
cg=$(new_cg mem-lofi)
cgs+=("$cg")
before=$(file_kib "$cg")
in_cg "$cg" dd if=/dev/zero of="$dev" conv=nocreat bs=1M count=64 oflag=direct status=none || fail "writing $dev from $cg failed"
after=$(file_kib "$cg")
echo "64 MiB written to $dev (buffered mapping) with O_DIRECT from $cg: memory.stat file $before -> $after KiB; backing file resident $(resident_kib "$img") KiB"
[ $((after - before)) -ge 49152 ] ||
	bad "64 MiB written through lofi from $cg charged it $((after - before)) KiB of page cache, want at least 48 MiB (the backing file's page cache went to another cgroup)"
"$map" unmap "$n" || fail "unmap $dev failed"

# 2. blkcg: the backing device's I/O counted in the writer's io.stat.
echo "=== io cgroup: io.stat of $bk_loop [${SECONDS} s]"
cg=$(new_cg io-control)
cgs+=("$cg")
in_cg "$cg" dd if=/dev/zero of="$bk_mnt/io-control" bs=1M count=4 oflag=direct status=none ||
	fail "writing $bk_mnt/io-control from $cg failed"
control=$(wbytes "$cg" "$loop_devt")
echo "4 MiB O_DIRECT into a file on the backing ext4 from $cg: io.stat wbytes $control on $loop_devt"
[ "$control" -ge 4194304 ] || fail "a direct write of 4 MiB from $cg shows $control bytes in its io.stat: the probe cannot tell"

img=$bk_mnt/io.img
dd if=/dev/zero of="$img" bs=1M count=32 conv=fsync status=none || fail "creating $img failed"
dev=$(map_direct "$img")
n=$(minor_of "$dev")
[ "$(direct_refused)" = 0 ] || bad "direct I/O was refused for a file on ext4"
settle
cg=$(new_cg io-lofi)
cgs+=("$cg")
in_cg "$cg" dd if=/dev/zero of="$dev" conv=nocreat bs=1M count=4 seek=8 oflag=direct status=none || fail "writing $dev from $cg failed"
got=$(wbytes "$cg" "$loop_devt")
echo "4 MiB O_DIRECT through $dev (direct mapping) from $cg: io.stat wbytes $got on $loop_devt"
[ "$got" -ge 4194304 ] ||
	bad "4 MiB written through lofi from $cg shows $got bytes on $bk_loop in its io.stat, want at least 4 MiB: lofi's I/O was not charged to the writer's io cgroup"
"$map" unmap "$n" || fail "unmap $dev failed"

[ "$failures" -eq 0 ] || fail "$failures check(s) failed (after ${SECONDS} s)"
unload_lofi
echo "ok: the backing file's page cache and the backing device's I/O are charged to the writer's cgroups (${SECONDS} s)"
