#!/usr/bin/env bash
# The Debian trixie environment of the stock-kernel test: a debootstrap
# chroot made from the machine's own Debian mirror, with trixie-backports'
# Rust-enabled kernel image and headers, Debian's own initramfs for it, and
# the packages a Debian user building lofi has (trixie's rustc, rust-src,
# bindgen, gcc, cargo) plus the guest test's tools.  Prints the path of a
# directory holding:
#   root/      the chroot
#   release    the kernel release (e.g. 7.3.4+deb13-amd64)
#   packages   the versions that key the environment
#
# Cached in $LOFI_CACHE/distro/env-<key>, keyed by the versions of the
# packages that matter (kernel image and headers, linux-source, rustc,
# bindgen, cargo), the package list and this script; a new key builds a
# new environment (about 5 minutes) and removes older ones.  The package
# lists are read from the mirror once (LOFI_APT_REFRESH=1 reads them
# again, as does a cold build).
set -euo pipefail
shopt -s inherit_errexit
. "$(dirname "$0")/../../scripts/lib/common.sh"
# shellcheck source=scripts/lib/debian.sh
. "$LOFI_ROOT/scripts/lib/debian.sh"

SUITE=trixie
BACKPORTS=trixie-backports
# What the test's chroot holds besides debootstrap's minimal base: the
# kernel's build dependencies, the Rust toolchain of the suite, and what the
# booted guest runs (kmod, e2fsprogs, util-linux, initramfs-tools).
ENV_PACKAGES="rustc rust-src libstd-rust-dev bindgen cargo gcc-14 gcc make bc bison flex
 libelf-dev libssl-dev dwarves kmod xz-utils zstd cpio python3 e2fsprogs util-linux
 initramfs-tools ca-certificates binutils"

apt_dir=$LOFI_CACHE/apt-$SUITE-env
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1)

mirror=${LOFI_DEBIAN_MIRROR:-$(debian_mirror)}

# The package lists of trixie and trixie-backports, in a private apt
# directory (the machine's own sources stay untouched).
refresh_lists() {
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
		"$mirror" "$SUITE" "$mirror" "$BACKPORTS" >"$apt_dir/sources.list"
	log "reading the $SUITE and $BACKPORTS package lists from the machine's mirror"
	run_logged "$LOFI_CACHE/logs/apt-$SUITE-env-update.log" apt-get "${apt_opts[@]}" update ||
		die "could not read $SUITE/$BACKPORTS from $mirror" "check the mirror, or set LOFI_DEBIAN_MIRROR"
	touch "$apt_dir/updated"
	refreshed=1
}

# candidate PKG [SUITE]: the version apt would pick (from SUITE if given).
candidate() {
	if [ -n "${2:-}" ]; then
		apt-cache "${apt_opts[@]}" madison "$1" | awk -F'|' -v s="$2" '$3 ~ s"/" { gsub(/ /, "", $2); print $2; exit }'
	else
		apt-cache "${apt_opts[@]}" policy "$1" | awk '/Candidate:/ { print $2; exit }'
	fi
}

# The kernel: what trixie-backports' linux-image-amd64 points to.
resolve() {
	local meta_ver
	meta_ver=$(candidate linux-image-amd64 "$BACKPORTS")
	[ -n "$meta_ver" ] || die "$BACKPORTS has no linux-image-amd64" "check that the mirror carries $BACKPORTS"
	release=$(apt-cache "${apt_opts[@]}" show "linux-image-amd64=$meta_ver" |
		sed -n 's/^Depends:.*linux-image-\([0-9][^ ,]*-amd64\).*/\1/p' | head -n 1)
	[ -n "$release" ] || die "cannot tell which kernel linux-image-amd64 $meta_ver depends on"
	kernel_ver=$(candidate "linux-image-$release" "$BACKPORTS")
	series=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kernel_ver")
	packages=$(
		echo "debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
		echo "linux-image-$release $kernel_ver"
		echo "linux-headers-$release $(candidate "linux-headers-$release" "$BACKPORTS")"
		echo "linux-source-$series $(candidate "linux-source-$series" "$BACKPORTS")"
		for p in rustc bindgen cargo initramfs-tools; do echo "$p $(candidate "$p" "$SUITE")"; done
		echo "list $ENV_PACKAGES" | tr -s ' \n' ' '
		echo
		echo "script $(sha256sum "$0" | cut -c1-16)"
	)
	key=$(sha256sum <<<"$packages" | cut -c1-16)
}

refreshed=0
[ -f "$apt_dir/updated" ] && [ "${LOFI_APT_REFRESH:-0}" != 1 ] || refresh_lists
resolve
env=$LOFI_CACHE/distro/env-$key
if [ ! -f "$env/complete" ] && [ "$refreshed" = 0 ]; then
	# A cold build reads the lists afresh, so that it installs what the
	# mirror has today.
	refresh_lists
	resolve
	env=$LOFI_CACHE/distro/env-$key
fi
if [ -f "$env/complete" ]; then
	echo "$env"
	exit 0
fi

command -v debootstrap >/dev/null ||
	die "debootstrap is missing" "install it (apt-get install debootstrap): tests/distro/stock-kernel.sh does"
log "making the $SUITE environment with Debian's $release kernel in $env (about 5 minutes)"
rm -rf "$env"
mkdir -p "$env"
run_logged "$LOFI_CACHE/logs/distro-debootstrap.log" debootstrap --variant=minbase "$SUITE" "$env/root" "$mirror" ||
	die "debootstrap of $SUITE from $mirror failed"
printf 'deb %s %s main\ndeb %s %s main\n' "$mirror" "$SUITE" "$mirror" "$BACKPORTS" >"$env/root/etc/apt/sources.list"
# The kernel's postinst makes Debian's initramfs; MODULES=most (Debian's
# default) has the virtio and ext4 modules the guest boots from.
# shellcheck disable=SC2086 # the package list is a word list
run_logged "$LOFI_CACHE/logs/distro-env-apt.log" unshare --mount --propagation private sh -c '
	set -e
	root=$1; shift
	mount -t proc proc "$root/proc"
	mount --rbind /dev "$root/dev"
	chroot "$root" apt-get update
	DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends "$@"
	chroot "$root" apt-get clean
' sh "$env/root" $ENV_PACKAGES "linux-image-$release/$BACKPORTS" "linux-headers-$release/$BACKPORTS" ||
	die "installing Debian's $release kernel and the build packages in the $SUITE environment failed"
# The kernel's dependencies (linux-base) come from the backports suite
# too; everything else from trixie itself: its rustc is the kernel's.
installed=$(chroot "$env/root" dpkg-query -W -f='${Version}' "linux-image-$release")
[ "$installed" = "$kernel_ver" ] ||
	die "the $SUITE environment got linux-image-$release $installed, not $kernel_ver" "rerun with LOFI_APT_REFRESH=1"
[ -f "$env/root/boot/vmlinuz-$release" ] && [ -f "$env/root/boot/initrd.img-$release" ] ||
	die "the $SUITE environment has no /boot/vmlinuz-$release or initrd.img-$release"
echo "$release" >"$env/release"
echo "$packages" >"$env/packages"
touch "$env/complete"
# Older environments are of no further use.
for old in "$LOFI_CACHE"/distro/env-*; do
	[ "$old" = "$env" ] || rm -rf "$old"
done
echo "$env"
