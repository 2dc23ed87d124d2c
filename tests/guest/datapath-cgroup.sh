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
#  - blkcg: with io.max wbps=512 KiB/s on the backing loop device for a
#    child cgroup, a 4 MiB O_DIRECT write from it straight into a file on
#    the backing ext4 takes at least 5 s (8 s at that rate); so must a 4 MiB
#    O_DIRECT write from it through a direct lofi mapping of a file there,
#    while the same write from the root cgroup takes less than 2.5 s.
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
# timed_ms CMD...: run CMD; prints how long it took, in milliseconds.
timed_ms() {
	local t0
	t0=$(now_ms)
	"$@" || fail "$* failed"
	echo $(($(now_ms) - t0))
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
in_cg "$cg" dd if=/dev/zero of="$dev" bs=1M count=64 oflag=direct status=none || fail "writing $dev from $cg failed"
after=$(file_kib "$cg")
echo "64 MiB written to $dev (buffered mapping) with O_DIRECT from $cg: memory.stat file $before -> $after KiB; backing file resident $(resident_kib "$img") KiB"
[ $((after - before)) -ge 49152 ] ||
	bad "64 MiB written through lofi from $cg charged it $((after - before)) KiB of page cache, want at least 48 MiB (the backing file's page cache went to another cgroup)"
"$map" unmap "$n" || fail "unmap $dev failed"

# 2. blkcg: io.max on the backing device.
echo "=== io cgroup: io.max wbps=512 KiB/s on $bk_loop [${SECONDS} s]"
cg=$(new_cg io)
cgs+=("$cg")
echo "$loop_devt wbps=524288" >"$cg/io.max" || fail "setting io.max on $loop_devt failed"
echo "io.max: $(cat "$cg/io.max")"
t_control=$(timed_ms in_cg "$cg" dd if=/dev/zero of="$bk_mnt/io-control" bs=1M count=4 oflag=direct status=none)
echo "4 MiB O_DIRECT into a file on the backing ext4 from $cg: $(secs "$t_control") s"
[ "$t_control" -ge 5000 ] || fail "io.max did not throttle a direct write to $bk_loop ($(secs "$t_control") s for 4 MiB at 512 KiB/s): the probe cannot tell"

img=$bk_mnt/io.img
dd if=/dev/zero of="$img" bs=1M count=32 conv=fsync status=none || fail "creating $img failed"
dev=$(map_direct "$img")
n=$(minor_of "$dev")
[ "$(direct_refused)" = 0 ] || bad "direct I/O was refused for a file on ext4"
settle
t_root=$(timed_ms dd if=/dev/zero of="$dev" bs=1M count=4 oflag=direct status=none)
t_cg=$(timed_ms in_cg "$cg" dd if=/dev/zero of="$dev" bs=1M count=4 seek=8 oflag=direct status=none)
echo "4 MiB O_DIRECT through $dev (direct mapping): $(secs "$t_root") s from the root cgroup, $(secs "$t_cg") s from $cg"
[ "$t_root" -lt 2500 ] || fail "4 MiB through $dev from the root cgroup took $(secs "$t_root") s: too slow to compare"
[ "$t_cg" -ge 5000 ] ||
	bad "4 MiB through lofi from $cg took $(secs "$t_cg") s: the backing device's io.max (512 KiB/s) did not apply, so lofi's I/O was not charged to the writer's io cgroup"
"$map" unmap "$n" || fail "unmap $dev failed"

[ "$failures" -eq 0 ] || fail "$failures check(s) failed (after ${SECONDS} s)"
unload_lofi
echo "ok: the backing file's page cache and the backing device's I/O are charged to the writer's cgroups (${SECONDS} s)"
