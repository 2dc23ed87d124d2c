#!/usr/bin/env bash
# Prove that lofi's in-tree hooks work: drop drivers/block/lofi/ into a copy
# of the kernel tree, hook its Kconfig and Makefile into drivers/block/,
# enable BLK_DEV_LOFI=m and build it with the kernel's own build, the way it
# would be built upstream.
#
# The copy reuses the cached kernel build: the source is a hard-link copy
# (files lofi changes are replaced, never edited in place) and the build
# directory a full copy; both are bind-mounted over the original paths in a
# private mount namespace, so that Kbuild sees the same paths and rebuilds
# only what the configuration change touches.  Needs root (mount namespace).
#
# usage: scripts/intree-build.sh [--test]   (--test: print PASS/FAIL lines)
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

test_mode=0
[ "${1:-}" != --test ] || test_mode=1
result() { # result PASS|FAIL WHY
	if [ $test_mode = 1 ]; then echo "$1 intree-build $2"; else log "$1: $2"; fi
	[ "$1" = PASS ]
}

KDIR=$("$LOFI_ROOT/scripts/provision.sh")
SRC=$("$LOFI_ROOT/scripts/provision.sh" --print-source)
work=$LOFI_CACHE/intree
start=$(date +%s)
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

log "making a copy of the kernel tree with lofi in drivers/block/lofi"
cp -al "$SRC" "$work/linux"
(cd "$LOFI_ROOT" && git ls-files --cached --others --exclude-standard drivers include/uapi Documentation) |
	while read -r f; do
		rm -f "$work/linux/$f"
		mkdir -p "$(dirname "$work/linux/$f")"
		cp "$LOFI_ROOT/$f" "$work/linux/$f"
	done
hook() { # hook FILE SED-SCRIPT: rewrite FILE of the copy without touching the original
	sed "$2" "$SRC/$1" >"$work/hook.tmp"
	rm -f "$work/linux/$1"
	mv "$work/hook.tmp" "$work/linux/$1"
}
hook drivers/block/Kconfig '/^source "drivers\/block\/rnull\/Kconfig"/a source "drivers/block/lofi/Kconfig"'
hook drivers/block/Makefile '$a obj-$(CONFIG_BLK_DEV_LOFI)\t+= lofi/'
grep -q 'drivers/block/lofi/Kconfig' "$work/linux/drivers/block/Kconfig" || result FAIL "could not hook Kconfig" || exit 1

log "copying the cached kernel build ($(du -sh "$KDIR" | cut -f1))"
cp -a "$KDIR" "$work/build"

kernel_build_env
log "building lofi in-tree (CONFIG_BLK_DEV_LOFI=m)"
jobs=$(($(nproc) + 1))
status=0
unshare -m bash -euo pipefail -c '
	src=$1 kdir=$2 work=$3 jobs=$4
	mount --bind "$work/linux" "$src"
	mount --bind "$work/build" "$kdir"
	"$src/scripts/config" --file "$kdir/.config" --module BLK_DEV_LOFI
	make -C "$src" O="$kdir" olddefconfig
	grep -qx "CONFIG_BLK_DEV_LOFI=m" "$kdir/.config" || { echo "Kconfig dropped BLK_DEV_LOFI"; exit 1; }
	make -C "$src" O="$kdir" -j"$jobs" modules
	modinfo -F name "$kdir/drivers/block/lofi/lofi.ko"
' intree "$SRC" "$KDIR" "$work" "$jobs" >"$work/../intree-build.log" 2>&1 || status=$?
elapsed=$(($(date +%s) - start))
if [ $status -ne 0 ] || [ "$(tail -n 1 "$work/../intree-build.log")" != lofi ]; then
	tail -n 30 "$work/../intree-build.log" | sed 's/^/    /' >&2
	result FAIL "in-tree build failed after ${elapsed}s (log: $LOFI_CACHE/intree-build.log)"
	exit 1
fi
result PASS "drivers/block/lofi/lofi.ko built in-tree with CONFIG_BLK_DEV_LOFI=m in ${elapsed}s"
