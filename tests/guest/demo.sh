#!/usr/bin/env bash
# What `make run` shows: lofi loaded in a Rust-enabled kernel, an image file
# mapped to /dev/lofi/N, a file system made and mounted on it, listed, and
# everything undone again.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$LOFI_PROG_DIR/lofi_map
show() { echo "# $*"; "$@"; }

echo "# uname -r"
uname -r
show insmod "$LOFI_KO"
show ls -l /dev/lofictl
show truncate -s 64M "$PWD/disk.img"
echo "# lofi_map map $PWD/disk.img"
dev=$("$map" map "$PWD/disk.img") || fail "map failed"
echo "$dev"
show ls -l /dev/lofi/
show mkfs.ext4 -q -L lofi-demo "$dev"
mkdir mnt
show mount "$dev" mnt
show cp -a "$LOFI_ROOT/README.md" "$LOFI_ROOT/Documentation" mnt/
show df -h mnt
show ls -lR mnt
show umount mnt
show fsck.ext4 -fn "$dev"
show grep lofi /proc/diskstats
show "$map" unmap "$dev"
show rmmod lofi
