# shellcheck shell=bash
# The test kernel: Debian's linux-source tarball, configured from
# tinyconfig + scripts/kconfig/lofi-test.config and built once per set of
# inputs under $LOFI_KERNELS.  A build is used only when its stamp exists, so
# an interrupted build is never mistaken for a finished one.
#
# The minimal configuration: the same plus scripts/kconfig/lofi-minimal.config
# (no KUnit, no COMPAT, no lock debugging), only prepared (`make
# modules_prepare`: enough to compile an out-of-tree Rust module), cached the
# same way.
#
# The benchmark kernel: tinyconfig + lofi-test.config + lofi-bench.config (no
# lock, list, object, allocator or Rust debugging), built like the test
# kernel under its own key, only when `make bench` asks for it
# (scripts/provision.sh --bench).

KERNEL_FRAGMENT=$LOFI_ROOT/scripts/kconfig/lofi-test.config
KERNEL_MINIMAL_FRAGMENT=$LOFI_ROOT/scripts/kconfig/lofi-minimal.config
KERNEL_BENCH_FRAGMENT=$LOFI_ROOT/scripts/kconfig/lofi-bench.config
KERNEL_PATCHES=$LOFI_ROOT/scripts/kernel-patches
# Bump when the way the kernel is built changes in a way the inputs below
# do not capture.
KERNEL_RECIPE=1
# The same for the prepared tree of the minimal configuration.
KERNEL_PREPARED_RECIPE=1
# The same for the benchmark kernel.
KERNEL_BENCH_RECIPE=1

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

# kernel_cache_key DEB RECIPE FRAGMENT...: everything a kernel tree depends
# on, hashed: source package version, fragments, patches, compilers and the
# recipe.
kernel_cache_key() {
	local deb=$1 recipe=$2
	shift 2
	{
		echo "recipe $recipe"
		dpkg-deb -f "$deb" Package Version
		cat "$@"
		cat "$KERNEL_PATCHES"/*.patch 2>/dev/null
		rustc -vV
		"$LOFI_BINDGEN_ROOT/bin/bindgen" --version
		echo "libclang $LIBCLANG_WHEEL_VERSION"
		gcc --version | head -n 1
	} | sha256sum | cut -c1-16
}

# kernel_check_config CONFIG FRAGMENT...: check that every option the
# fragments ask for made it into CONFIG; for an option several fragments
# set, the last one counts, as with merge_config.sh.
kernel_check_config() {
	local config=$1 bad=0 line opt
	shift
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
	done < <(awk '
		/^CONFIG_[A-Za-z0-9_]+=/ { opt = $0; sub(/=.*/, "", opt) }
		/^# CONFIG_[A-Za-z0-9_]+ is not set$/ { opt = $2 }
		opt != "" { if (!(opt in want)) order[n++] = opt; want[opt] = $0; opt = "" }
		END { for (i = 0; i < n; i++) print want[order[i]] }
	' "$@")
	return $bad
}

# kernel_remove_unfinished PREFIX: remove $LOFI_KERNELS/PREFIX-* trees that
# never got their stamp (interrupted, failed): they are only disk waste.
kernel_remove_unfinished() {
	local stale
	for stale in "$LOFI_KERNELS/$1"-*; do
		if [ -d "$stale" ] && [ ! -f "$stale/.lofi-complete" ]; then
			rm -rf "$stale"
		fi
	done
}

# kernel_configure SRC OUT FRAGMENT...: check the toolchain and write
# OUT/.config from tinyconfig and the fragments; logs in OUT/build.log.*.
kernel_configure() {
	local src=$1 out=$2 klog=$2/build.log
	shift 2
	local mk=(make -C "$src" O="$out")
	run_logged "$klog.rustavailable" "${mk[@]}" rustavailable ||
		die "the Rust toolchain is not usable by the kernel" "see the log above (rust-src, bindgen, libclang)"
	run_logged "$klog.config" "${mk[@]}" tinyconfig || die "make tinyconfig failed"
	run_logged "$klog.merge" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$@" ||
		die "merge_config.sh failed"
	run_logged "$klog.olddefconfig" "${mk[@]}" olddefconfig || die "make olddefconfig failed"
	kernel_check_config "$out/.config" "$@" ||
		die "the kernel configuration lacks options the fragments ask for" \
			"fix $(printf '%s ' "${@#"$LOFI_ROOT"/}")(dependencies) or the toolchain"
}

# kernel_build SRC PREFIX WHAT KEY FRAGMENT...: build bzImage and the
# modules of tinyconfig + the fragments from SRC in $LOFI_KERNELS/PREFIX-KEY
# unless a finished build is there; print its build directory.  WHAT names
# the kernel in the progress messages.
kernel_build() {
	local src=$1 prefix=$2 what=$3 key=$4 out jobs
	shift 4
	out=$LOFI_KERNELS/$prefix-$key
	if [ -f "$out/.lofi-complete" ]; then
		echo "$out"
		return
	fi
	kernel_remove_unfinished "$prefix"
	kernel_build_env
	jobs=$(($(nproc) + 1))
	log "building the $what in $out (key $key; about 11 minutes on 2 cores)"
	rm -rf "$out"
	mkdir -p "$out"
	local klog=$out/build.log mk=(make -C "$src" O="$out")
	kernel_configure "$src" "$out" "$@"
	run_logged "$klog" "${mk[@]}" -j"$jobs" bzImage modules ||
		die "the $what build failed" "see $klog"
	touch "$out/.lofi-complete"
	log "$what ready: $out"
	echo "$out"
}

# Build the test kernel for the current inputs unless a finished build
# exists; print its build directory.
ensure_kernel() {
	local deb src key
	deb=$(kernel_source_deb)
	src=$(kernel_source_tree "$deb")
	key=$(kernel_cache_key "$deb" "$KERNEL_RECIPE" "$KERNEL_FRAGMENT")
	kernel_build "$src" build "test kernel" "$key" "$KERNEL_FRAGMENT"
}

# ensure_bench_kernel DEB SRC: the same for the benchmark kernel, from the
# source package DEB unpacked in SRC (kernel_source_deb, kernel_source_tree:
# the caller gets them, under the provisioning lock).
ensure_bench_kernel() {
	local deb=$1 src=$2 key
	key=$(kernel_cache_key "$deb" "$KERNEL_RECIPE bench $KERNEL_BENCH_RECIPE" \
		"$KERNEL_FRAGMENT" "$KERNEL_BENCH_FRAGMENT")
	kernel_build "$src" bench "benchmark kernel" "$key" "$KERNEL_FRAGMENT" "$KERNEL_BENCH_FRAGMENT"
}

# Prepare a tree of the minimal configuration for the current inputs unless
# a finished one exists; print its build directory.  `make modules_prepare`
# makes what an out-of-tree Rust module compiles against (generated headers,
# rust/*.rmeta, the proc macros, objtool, modpost, scripts/module.lds) but
# not vmlinux, so there is no Module.symvers: compile objects against it,
# not a linked module.
ensure_prepared_kernel() {
	local deb src key out jobs start
	deb=$(kernel_source_deb)
	src=$(kernel_source_tree "$deb")
	key=$(kernel_cache_key "$deb" "$KERNEL_RECIPE prepared $KERNEL_PREPARED_RECIPE" \
		"$KERNEL_FRAGMENT" "$KERNEL_MINIMAL_FRAGMENT")
	out=$LOFI_KERNELS/prepared-$key
	if [ -f "$out/.lofi-complete" ]; then
		echo "$out"
		return
	fi
	kernel_remove_unfinished prepared
	kernel_build_env
	jobs=$(($(nproc) + 1))
	start=$(date +%s)
	log "preparing the minimal-configuration kernel tree in $out (key $key; about a minute on 2 cores)"
	rm -rf "$out"
	mkdir -p "$out"
	kernel_configure "$src" "$out" "$KERNEL_FRAGMENT" "$KERNEL_MINIMAL_FRAGMENT"
	run_logged "$out/build.log" make -C "$src" O="$out" -j"$jobs" modules_prepare ||
		die "make modules_prepare failed" "see $out/build.log"
	touch "$out/.lofi-complete"
	log "prepared tree ready in $(($(date +%s) - start))s: $out"
	echo "$out"
}
