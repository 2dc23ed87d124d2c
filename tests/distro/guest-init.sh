#!/bin/bash
# PID 1 of the stock-kernel guest: Debian's own kernel, booted through
# Debian's initramfs into the trixie environment where `make install-distro`
# installed lofi.  Loads lofi with modprobe, maps an image with lofiadm,
# makes ext4 on it, writes a tree of files, checks them after a remount with
# cold caches and the file system with e2fsck after the unmap, removes the
# module, and prints the kernel log.  Every check prints one line
# "LOFI-RESULT PASS|FAIL name [why]" on the console; the host
# (tests/distro/stock-kernel.sh) judges them and the log.
# The expected kernel release is the first argument (init=... ARG).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
want_release=${1:-}

mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
exec >/dev/console 2>&1

result() { echo "LOFI-RESULT $*"; }
# check NAME CMD...: one result line from CMD's status.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		result PASS "$name"
	else
		result FAIL "$name" "$(tr '\n' ' ' <<<"$out" | cut -c1-300)"
	fi
}

finish() {
	echo "LOFI-TAINT $(cat /proc/sys/kernel/tainted)"
	echo "LOFI-DMESG-BEGIN"
	dmesg
	echo "LOFI-DMESG-END"
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
}
trap finish EXIT

echo "LOFI-GUEST $(uname -r) $(cat /proc/version)"
check debian-kernel test "$(uname -r)" = "$want_release"
check debian-build grep -q 'Debian' /proc/version

check modprobe modprobe lofi
check module-from-updates sh -c 'modinfo -n lofi | grep -q "/updates/lofi.ko"'
check lofictl test -c /dev/lofictl
echo "LOFI-MODULE-TAINT $(cat /sys/module/lofi/taint 2>/dev/null)"

img=/tmp/disk.img
truncate -s 96M "$img"
dev=$(lofiadm -a "$img" 2>&1)
check lofiadm-map test -b "$dev"
check lofiadm-list sh -c "lofiadm | grep -q '$img'"
check mkfs mkfs.ext4 -q -F "$dev"
mkdir -p /mnt/lofi
check mount mount -t ext4 "$dev" /mnt/lofi

# A tree of files of varied sizes, with their checksums.
write_tree() {
	local i
	mkdir -p /mnt/lofi/tree/a/b /mnt/lofi/tree/c
	for i in $(seq 1 24); do
		head -c $((i * 37 * 1024 + i)) /dev/urandom >"/mnt/lofi/tree/$([ $((i % 3)) = 0 ] && echo a/b || echo c)/file$i"
	done
	head -c 16M /dev/urandom >/mnt/lofi/tree/big
	(cd /mnt/lofi && find tree -type f -print0 | sort -z | xargs -0 sha256sum) >/tmp/sums
	[ "$(wc -l </tmp/sums)" -eq 25 ]
}
check write-tree write_tree
check umount-after-write umount /mnt/lofi
echo 3 >/proc/sys/vm/drop_caches
check remount mount -t ext4 -o ro "$dev" /mnt/lofi
check verify-tree sh -c 'cd /mnt/lofi && sha256sum --quiet -c /tmp/sums'
check umount umount /mnt/lofi
check lofiadm-unmap lofiadm -d "$img"
check unmapped sh -c "! lofiadm | grep -q '$img'"
check fsck-backing-file e2fsck -fn "$img"
check rmmod rmmod lofi
check module-gone sh -c '! grep -q "^lofi " /proc/modules'
