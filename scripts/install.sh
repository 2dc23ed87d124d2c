#!/usr/bin/env bash
# `make install`: install the built lofi.ko, lofiadm, its man page and the
# udev rule of the /dev/lofi/N links.
#
#   $DESTDIR/lib/modules/<kernel release>/$LOFI_MODULE_DIR/lofi.ko (extra/;
#       make install-distro uses updates/, which depmod prefers)
#   $DESTDIR$PREFIX/sbin/lofiadm
#   $DESTDIR$PREFIX/share/man/man8/lofiadm.8
#   $DESTDIR$UDEVRULESDIR/60-lofi.rules (UDEVRULESDIR: /etc/udev/rules.d,
#       the local administrator's rules, which udev reads whatever PREFIX is)
#
# The kernel release is that of the tree lofi.ko was built against
# ($KDIR/include/config/kernel.release; KDIR defaults to the cached test
# kernel). Without DESTDIR, depmod is run for that release so that
# `modprobe lofi` finds the module, and udev reloads its rules.
# Environment: DESTDIR (default empty), PREFIX (default /usr/local), KDIR,
# UDEVRULESDIR, LOFI_MODULE_DIR.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
UDEVRULESDIR=${UDEVRULESDIR:-/etc/udev/rules.d}
LOFI_MODULE_DIR=${LOFI_MODULE_DIR:-extra}
if [ -z "${KDIR:-}" ]; then
	KDIR=$("$LOFI_ROOT/scripts/provision.sh")
fi

ko=$LOFI_ROOT/drivers/block/lofi/lofi.ko
bin=$LOFI_ROOT/tools/lofiadm/target/release/lofiadm
man=$LOFI_ROOT/tools/lofiadm/lofiadm.8
rules=$LOFI_ROOT/tools/udev/60-lofi.rules
for f in "$ko" "$bin" "$man" "$rules"; do
	[ -f "$f" ] || die "$f is missing" "build first: make (or make modules lofiadm)"
done
release_file=$KDIR/include/config/kernel.release
[ -f "$release_file" ] || die "no $release_file" "point KDIR at the kernel build tree lofi.ko was built against"
release=$(cat "$release_file")

install -D -m 0644 "$ko" "$DESTDIR/lib/modules/$release/$LOFI_MODULE_DIR/lofi.ko"
install -D -m 0755 "$bin" "$DESTDIR$PREFIX/sbin/lofiadm"
install -D -m 0644 "$man" "$DESTDIR$PREFIX/share/man/man8/lofiadm.8"
install -D -m 0644 "$rules" "$DESTDIR$UDEVRULESDIR/60-lofi.rules"
log "installed lofi.ko ($release), lofiadm, lofiadm.8 and 60-lofi.rules under ${DESTDIR:-/} (prefix $PREFIX, rules in $UDEVRULESDIR)"

if [ -z "$DESTDIR" ] && command -v depmod >/dev/null 2>&1; then
	depmod -a "$release" || log "depmod -a $release failed: run it before modprobe lofi"
fi
if [ -z "$DESTDIR" ] && command -v udevadm >/dev/null 2>&1; then
	udevadm control --reload 2>/dev/null || log "udev is not running: lofiadm makes the /dev/lofi/N links itself"
fi
