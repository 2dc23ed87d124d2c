# shellcheck shell=bash
# What the tests of lofi's data path share (datapath-*.sh, and the direct
# I/O passes of data-integrity.sh and forced-unmap-rounds.sh), sourced after
# lib.sh and hardening-lib.sh: a real file system for backing files (ext4
# on a loop device, where O_DIRECT, STATX_DIOALIGN and fallocate work), and
# probes of the page cache, of allocated blocks, of the queue limits and of
# the kernel log.

map=${prog_dir:?sourced after lib.sh}/lofi_map
dioalign=$prog_dir/lofi_dioalign
data=$prog_dir/lofi_data_test
need_progs "$map" "$dioalign" "$data"

# dp_ext4_setup SIZE [SECTOR]: like bk_setup (the same $bk_img, $bk_loop,
# $bk_mnt, so bk_umount_wait and bk_teardown apply), but the loop device
# has a logical block size of SECTOR bytes (default 512) and the ext4 file
# system 4 KiB blocks. Its files' direct-I/O alignment is SECTOR.
dp_ext4_setup() {
	bk_img=$LOFI_SCRATCH/backing-fs.img
	bk_mnt=$LOFI_SCRATCH/backing
	truncate -s "$1" "$bk_img"
	bk_loop=$(losetup -f --show --sector-size "${2:-512}" "$bk_img") ||
		fail "losetup --sector-size ${2:-512} of the backing file system failed"
	mkfs.ext4 -q -F -b 4096 "$bk_loop" || fail "mkfs.ext4 of the backing file system failed"
	mkdir -p "$bk_mnt"
	bk_mount
}

# dio_offset FILE: the direct-I/O offset alignment of FILE (statx
# STATX_DIOALIGN), 0 if its file system reports none.
dio_offset() {
	local out
	out=$("$dioalign" "$1") || fail "lofi_dioalign $1 failed"
	out=${out#offset=}
	echo "${out%% *}"
}

# drop_caches: write back, then drop the clean page cache.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# resident_kib FILE: how much of FILE is in the page cache, in KiB.
resident_kib() {
	local b
	b=$(fincore --bytes --noheadings --output RES "$1") || fail "fincore $1 failed"
	echo $((b / 1024))
}

# peak_resident_kib PID FILE: the most of FILE in the page cache, in KiB,
# sampled while PID runs and once after.
peak_resident_kib() {
	local peak=0 r
	while running "$1"; do
		r=$(resident_kib "$2")
		[ "$r" -le "$peak" ] || peak=$r
		sleep 0.5
	done
	r=$(resident_kib "$2")
	[ "$r" -le "$peak" ] || peak=$r
	echo "$peak"
}

# alloc_kib FILE: the space allocated to FILE, in KiB.
alloc_kib() {
	local b
	b=$(stat -c '%b %B' "$1") || fail "stat $1 failed"
	echo $((${b% *} * ${b#* } / 1024))
}

# queue_limit N NAME: /sys/block/lofiN/queue/NAME.
queue_limit() { cat "/sys/block/lofi$1/queue/$2"; }

# map_fields N: lofi_map fields N ("flags=0x1 block_size=4096 ...").
map_fields() { "$map" fields "$1"; }

# map_direct FILE: map FILE asking for direct I/O; prints the device.
# Writes DIRECT_REFUSED=1 to direct-refused if the mapping came back
# buffered (lofi_map's "direct I/O refused" on stderr), else 0; read it
# with direct_refused (map_direct runs in a command substitution).
map_direct() {
	local dev
	dev=$("$map" map "$1" direct 2>map-direct.err) || fail "map $1 direct failed: $(cat map-direct.err)"
	cat map-direct.err >&2
	if grep -q 'direct I/O refused' map-direct.err; then echo 1; else echo 0; fi >direct-refused
	wait_for 5 test -b "$dev" || fail "$dev is not a block device"
	echo "$dev"
}
# direct_refused: 1 if the last map_direct came back buffered, else 0.
direct_refused() { cat direct-refused; }

# kmsg_mark NAME: a line in the kernel log that kmsg_since NAME starts after.
kmsg_mark() { echo "datapath-test-mark: $1" >/dev/kmsg; }
# kmsg_since NAME: the kernel log after the last mark NAME, without
# timestamps and without the marks.
kmsg_since() {
	dmesg | sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' |
		awk -v m="datapath-test-mark: $1" '$0 == m { f = 1; n = 0; next }
			f && !/^datapath-test-mark: / { l[++n] = $0 }
			END { for (i = 1; i <= n; i++) print l[i] }'
}

# now_ms: wall-clock milliseconds (no fork).
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
# secs MS: MS milliseconds as seconds with two decimals, for messages.
secs() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }
