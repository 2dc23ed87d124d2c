#!/usr/bin/env bash
# `make install`: install the built lofi.ko, lofiadm and its man page.
#
#   $DESTDIR/lib/modules/<kernel release>/extra/lofi.ko
#   $DESTDIR$PREFIX/sbin/lofiadm
#   $DESTDIR$PREFIX/share/man/man8/lofiadm.8
#
# The kernel release is that of the tree lofi.ko was built against
# ($KDIR/include/config/kernel.release; KDIR defaults to the cached test
# kernel). Without DESTDIR, depmod is run for that release so that
# `modprobe lofi` finds the module.
# Environment: DESTDIR (default empty), PREFIX (default /usr/local), KDIR.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
if [ -z "${KDIR:-}" ]; then
	KDIR=$("$LOFI_ROOT/scripts/provision.sh")
fi

ko=$LOFI_ROOT/drivers/block/lofi/lofi.ko
bin=$LOFI_ROOT/tools/lofiadm/target/release/lofiadm
man=$LOFI_ROOT/tools/lofiadm/lofiadm.8
for f in "$ko" "$bin" "$man"; do
	[ -f "$f" ] || die "$f is missing" "build first: make (or make modules lofiadm)"
done
release_file=$KDIR/include/config/kernel.release
[ -f "$release_file" ] || die "no $release_file" "point KDIR at the kernel build tree lofi.ko was built against"
release=$(cat "$release_file")

install -D -m 0644 "$ko" "$DESTDIR/lib/modules/$release/extra/lofi.ko"
install -D -m 0755 "$bin" "$DESTDIR$PREFIX/sbin/lofiadm"
install -D -m 0644 "$man" "$DESTDIR$PREFIX/share/man/man8/lofiadm.8"
log "installed lofi.ko ($release), lofiadm and lofiadm.8 under ${DESTDIR:-/} (prefix $PREFIX)"

if [ -z "$DESTDIR" ] && command -v depmod >/dev/null 2>&1; then
	depmod -a "$release" || log "depmod -a $release failed: run it before modprobe lofi"
fi
