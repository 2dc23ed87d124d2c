#!/usr/bin/env bash
# `make install-distro`: build lofi for the distribution kernel of this
# Debian system and install it, with lofiadm, its man page and udev rule.
#
# Debian's Rust-enabled kernels (trixie-backports' 7.3, sid's 7.2) export
# Rust symbols, but their headers packages lack the Rust metadata an
# out-of-tree module is compiled against.  This script makes it, once per
# kernel, from the kernel's own source package, with exactly the compiler
# the kernel was built with, checks it against the kernel's exports, and
# builds lofi against the headers plus that metadata:
#
#   1. the kernel: release (uname -r), headers, CONFIG_RUST, the Debian
#      version of its packages;
#   2. its toolchain: the rustc of CONFIG_RUSTC_VERSION_TEXT (exactly),
#      rust-src of that rustc, a bindgen at least CONFIG_BINDGEN_VERSION_TEXT;
#   3. linux-source-X.Y of exactly the kernel's version; `make prepare` of it
#      into $LOFI_CACHE/distro/meta-<release>-<config hash>-<rustc>;
#   4. a check that the metadata's Rust exports equal the kernel's
#      (Module.symvers), refusing on any difference;
#   5. lofi.ko built against a private copy of the headers with the
#      metadata, warning-free; lofiadm built with cargo (or LOFIADM);
#   6. installed: /lib/modules/<release>/updates/lofi.ko (depmod run),
#      $PREFIX/sbin/lofiadm, its man page, /etc/udev/rules.d/60-lofi.rules.
#
# usage: scripts/install-distro.sh [--remove]
#   --remove  remove what an earlier run installed, and its caches
# Environment: LOFI_KERNEL_RELEASE (default: uname -r), LOFI_KERNEL_HEADERS
# (default: /lib/modules/<release>/build), LOFI_KERNEL_VERSION (the kernel
# package's Debian version, when no package owns the headers), RUSTC,
# BINDGEN, LOFIADM (a built lofiadm to install instead of building one),
# PREFIX (default /usr/local), LOFI_CACHE.
set -euo pipefail
shopt -s inherit_errexit
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=scripts/lib/distro-kernel.sh
. "$LOFI_ROOT/scripts/lib/distro-kernel.sh"
# shellcheck source=scripts/lib/distro-meta.sh
. "$LOFI_ROOT/scripts/lib/distro-meta.sh"

PREFIX=${PREFIX:-/usr/local}
release=${LOFI_KERNEL_RELEASE:-$(uname -r)}

[ -f /etc/debian_version ] && command -v apt-get >/dev/null && command -v dpkg-query >/dev/null ||
	die "install-distro supports Debian and its derivatives only (no apt/dpkg here)" \
		"on another distribution, build against a kernel tree that has the Rust metadata: KDIR=... make"
[ "$(id -u)" -eq 0 ] ||
	die "install-distro installs packages and a module: run it as root" "sudo make install-distro"

if [ "${1:-}" = --remove ]; then
	rm -f "/lib/modules/$release/updates/lofi.ko" "$PREFIX/sbin/lofiadm" \
		"$PREFIX/share/man/man8/lofiadm.8" /etc/udev/rules.d/60-lofi.rules
	depmod -a "$release" 2>/dev/null || true
	rm -rf "$LOFI_CACHE/distro/meta-$release-"* "$LOFI_CACHE/distro/headers-$release"
	log "removed lofi for $release and its cached Rust metadata"
	exit 0
fi
[ $# -eq 0 ] || die "unknown argument: $1" "usage: scripts/install-distro.sh [--remove]"

# 1. The kernel.
hdr=$(distro_find_headers "$release")
distro_require_rust "$hdr"
cfg=$hdr/.config
kver=$(distro_kernel_version "$hdr" "$release")
series=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kver")
log "kernel $release (Debian $kver), headers in $hdr"

# 2. Its toolchain.
rustc_text=$(kconfig_value "$cfg" RUSTC_VERSION_TEXT)
rustc=$(distro_find_rustc "$rustc_text")
rust_src=$(distro_rust_src "$rustc")
bindgen=$(distro_find_bindgen "$(kconfig_value "$cfg" BINDGEN_VERSION_TEXT)")
cc=$(kconfig_value "$cfg" CC_VERSION_TEXT | awk '{print $1}')
command -v "$cc" >/dev/null || distro_apt_install "${cc#*-linux-gnu-}" >/dev/null ||
	die "the kernel was built with $cc, which is not installed" "install ${cc#*-linux-gnu-} and rerun"
log "toolchain: $rustc_text, $("$bindgen" --version), $cc"

# 3. and 4. The Rust metadata, checked against the kernel's exports.
if headers_have_rust_meta "$hdr"; then
	log "the headers carry the Rust metadata already"
	kdir=$hdr
else
	tarball=$(distro_source_tarball "$kver" "$series")
	key=$release-$(sha256sum "$cfg" | cut -c1-16)-$(awk '{print $2}' <<<"$rustc_text")
	meta=$(distro_prepare_meta "$hdr" "$tarball" "$rustc" "$bindgen" "$rust_src" "$cc" "$release" "$key")
	distro_check_exports "$meta" "$hdr"
	kdir=$(distro_headers_with_meta "$hdr" "$meta" "$release")
fi

# 5. lofi and lofiadm.
log "building lofi.ko for $release"
KDIR=$kdir "$LOFI_ROOT/scripts/build-module.sh" . RUSTC="$rustc" BINDGEN="$bindgen" RUST_LIB_SRC="$rust_src" \
	>"$LOFI_CACHE/logs/distro-module.log" 2>&1 || {
	tail -n 40 "$LOFI_CACHE/logs/distro-module.log" >&2
	die "lofi.ko did not build warning-free against $release" "see $LOFI_CACHE/logs/distro-module.log"
}
modinfo -F vermagic "$LOFI_ROOT/drivers/block/lofi/lofi.ko" | grep -q "^$release " ||
	die "lofi.ko was built for '$(modinfo -F vermagic "$LOFI_ROOT/drivers/block/lofi/lofi.ko")', not $release"
bin=$LOFI_ROOT/tools/lofiadm/target/release/lofiadm
if [ -n "${LOFIADM:-}" ]; then
	[ -x "$LOFIADM" ] || die "LOFIADM=$LOFIADM is not an executable"
	mkdir -p "$(dirname "$bin")"
	[ "$LOFIADM" -ef "$bin" ] || cp "$LOFIADM" "$bin"
else
	command -v cargo >/dev/null ||
		die "building lofiadm needs cargo" "install cargo (apt install cargo) or set LOFIADM to a built lofiadm"
	make -C "$LOFI_ROOT" --no-print-directory lofiadm ||
		die "lofiadm did not build" "see the output above"
fi

# 6. Installed where Debian's depmod prefers it (updates/ over the kernel's
# own modules).
KDIR=$kdir LOFI_MODULE_DIR=updates PREFIX=$PREFIX "$LOFI_ROOT/scripts/install.sh"
log "done: load it with 'modprobe lofi'; 'make uninstall-distro' removes it"
if [ -d /sys/firmware/efi ] && command -v mokutil >/dev/null && mokutil --sb-state 2>/dev/null | grep -q enabled; then
	log "Secure Boot is on: this kernel loads only signed modules; see README.md (Install on Debian) to sign lofi.ko"
fi
