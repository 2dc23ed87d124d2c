#!/usr/bin/env bash
# What `make run` shows: lofi loaded in a Rust-enabled kernel, an image file
# mapped to /dev/lofi/N with lofiadm, a file system made and mounted on it,
# the mappings listed, and everything undone again.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

lofiadm=${LOFIADM:-$LOFI_ROOT/tools/lofiadm/target/release/lofiadm}
[ -x "$lofiadm" ] || fail "$lofiadm missing: the VM runner builds it on the host (make lofiadm)"
PATH=$(dirname "$lofiadm"):$PATH
show() { echo "# $*"; "$@"; }

echo "# uname -r"
uname -r
show insmod "$LOFI_KO"
show ls -l /dev/lofictl
show truncate -s 64M "$PWD/disk.img"
echo "# lofiadm -a disk.img"
dev=$(lofiadm -a disk.img) || fail "lofiadm -a disk.img failed"
echo "$dev"
show ls -l /dev/lofi/
show mkfs.ext4 -q -L lofi-demo "$dev"
mkdir mnt
show mount "$dev" mnt
show cp -a "$LOFI_ROOT/README.md" "$LOFI_ROOT/Documentation" mnt/
show df -h mnt
show ls -lR mnt
show lofiadm
show lofiadm "$dev"
show umount mnt
show fsck.ext4 -fn "$dev"
show grep lofi /proc/diskstats
show lofiadm -d "$dev"
show lofiadm
show rmmod lofi
