# shellcheck shell=bash
# The test kernel: Debian's linux-source tarball, configured from
# tinyconfig + scripts/kconfig/lofi-test.config and built once per set of
# inputs under $LOFI_KERNELS.  A build is used only when its stamp exists, so
# an interrupted build is never mistaken for a finished one.

KERNEL_FRAGMENT=$LOFI_ROOT/scripts/kconfig/lofi-test.config
KERNEL_PATCHES=$LOFI_ROOT/scripts/kernel-patches
# Bump when the way the kernel is built changes in a way the inputs below
# do not capture.
KERNEL_RECIPE=1

# The cached linux-source .deb (downloaded once; LOFI_APT_REFRESH=1 fetches
# the newest again).
kernel_source_deb() {
	local pointer=$LOFI_DOWNLOADS/$LINUX_SOURCE_PKG.current deb ver
	if [ -f "$pointer" ] && [ -f "$(cat "$pointer")" ] && [ "${LOFI_APT_REFRESH:-0}" != 1 ]; then
		cat "$pointer"
		return
	fi
	private_apt_update
	ver=$(private_apt_versions "$LINUX_SOURCE_PKG" | head -n 1)
	[ -n "$ver" ] || die "$LINUX_SOURCE_PKG is not in $DEBIAN_EXTRA_SUITE" "rerun with LOFI_APT_REFRESH=1"
	log "downloading $LINUX_SOURCE_PKG $ver (about 170 MB)"
	deb=$(private_apt_download "$LINUX_SOURCE_PKG=$ver" "$LOFI_DOWNLOADS")
	[ -f "$deb" ] || die "download of $LINUX_SOURCE_PKG produced no file"
	echo "$deb" >"$pointer"
	echo "$deb"
}

# The kernel source tree for a .deb, unpacked once.
kernel_source_tree() {
	local deb=$1 ver dir tarball
	ver=$(dpkg-deb -f "$deb" Version)
	dir=$LOFI_KERNELS/src-$ver
	if [ ! -f "$dir/.complete" ]; then
		log "unpacking the kernel source $ver"
		rm -rf "$dir"
		mkdir -p "$dir/deb"
		dpkg-deb -x "$deb" "$dir/deb" || die "could not unpack $deb"
		tarball=$(ls "$dir"/deb/usr/src/linux-source-*.tar.* 2>/dev/null | head -n 1)
		[ -n "$tarball" ] || die "$deb holds no linux-source tarball"
		tar -C "$dir" -xf "$tarball" || die "could not unpack $tarball"
		rm -rf "$dir/deb"
		mv "$dir"/linux-source-* "$dir/linux" || die "unexpected layout in $tarball"
		if [ -d "$KERNEL_PATCHES" ]; then
			for p in "$KERNEL_PATCHES"/*.patch; do
				[ -f "$p" ] || continue
				patch -d "$dir/linux" -p1 <"$p" >/dev/null || die "kernel patch $p does not apply"
			done
		fi
		touch "$dir/.complete"
	fi
	echo "$dir/linux"
}

# Everything a kernel build depends on, hashed: source package version,
# fragment, patches, compilers and this recipe.
kernel_cache_key() {
	local deb=$1
	{
		echo "recipe $KERNEL_RECIPE"
		dpkg-deb -f "$deb" Package Version
		cat "$KERNEL_FRAGMENT"
		cat "$KERNEL_PATCHES"/*.patch 2>/dev/null
		rustc -vV
		"$LOFI_BINDGEN_ROOT/bin/bindgen" --version
		echo "libclang $LIBCLANG_WHEEL_VERSION"
		gcc --version | head -n 1
	} | sha256sum | cut -c1-16
}

# Check that every option the fragment asks for made it into .config.
kernel_check_config() {
	local config=$1 bad=0 line opt
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			grep -qxF "$line" "$config" || { log "config: wanted $line, got: $(grep -E "^(# )?${line%%=*}[= ]" "$config" || echo unset)"; bad=1; }
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			! grep -q "^$opt=" "$config" || { log "config: wanted $opt off"; bad=1; }
			;;
		esac
	done <"$KERNEL_FRAGMENT"
	return $bad
}

# Build the kernel for the current inputs unless a finished build exists;
# print its build directory.
ensure_kernel() {
	local deb src key out jobs
	deb=$(kernel_source_deb)
	src=$(kernel_source_tree "$deb")
	key=$(kernel_cache_key "$deb")
	out=$LOFI_KERNELS/build-$key
	if [ -f "$out/.lofi-complete" ]; then
		echo "$out"
		return
	fi
	# Builds that never finished (interrupted, failed) are only disk waste.
	for stale in "$LOFI_KERNELS"/build-*; do
		if [ -d "$stale" ] && [ ! -f "$stale/.lofi-complete" ]; then
			rm -rf "$stale"
		fi
	done
	kernel_build_env
	jobs=$(($(nproc) + 1))
	log "building the test kernel in $out (key $key; about 11 minutes on 2 cores)"
	rm -rf "$out"
	mkdir -p "$out"
	local klog=$out/build.log mk=(make -C "$src" O="$out")
	run_logged "$klog.rustavailable" "${mk[@]}" rustavailable ||
		die "the Rust toolchain is not usable by the kernel" "see the log above (rust-src, bindgen, libclang)"
	run_logged "$klog.config" "${mk[@]}" tinyconfig || die "make tinyconfig failed"
	run_logged "$klog.merge" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$KERNEL_FRAGMENT" ||
		die "merge_config.sh failed"
	run_logged "$klog.olddefconfig" "${mk[@]}" olddefconfig || die "make olddefconfig failed"
	kernel_check_config "$out/.config" ||
		die "the kernel configuration lacks options the fragment asks for" \
			"fix scripts/kconfig/lofi-test.config (dependencies) or the toolchain"
	run_logged "$klog" "${mk[@]}" -j"$jobs" bzImage modules ||
		die "the kernel build failed" "see $klog"
	touch "$out/.lofi-complete"
	log "kernel ready: $out"
	echo "$out"
}
