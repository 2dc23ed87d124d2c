# shellcheck shell=bash
# The Rust metadata a distribution's kernel headers lack (rust/*.rmeta, the
# proc-macro libraries, scripts/target.json), made by `make prepare` of the
# kernel's own source package with its configuration and compiler, cached,
# checked against the kernel's exports, and added to a private copy of the
# headers that lofi is then built against.  Source after distro-kernel.sh.

# headers_have_rust_meta HEADERS: whether HEADERS already carry what an
# out-of-tree Rust module needs (Arch and Armbian ship it).
headers_have_rust_meta() {
	[ -f "$1/scripts/target.json" ] && [ -f "$1/rust/libkernel.rmeta" ] && [ -f "$1/rust/libmacros.so" ]
}

# symvers_rust_exports FILE: the Rust symbols vmlinux exports, sorted.
symvers_rust_exports() {
	awk '$2 ~ /^_R/ && $3 == "vmlinux" { print $2 }' "$1" | sort -u
}

# distro_source_tarball VERSION SERIES: the linux-source-SERIES tarball of
# exactly the Debian VERSION, installed from the archive; refuses when the
# archive offers another version only (the archive keeps the newest).
distro_source_tarball() {
	local ver=$1 series=$2 pkg tarball have offered
	pkg=linux-source-$series
	tarball=/usr/src/$pkg.tar.xz
	have=$(distro_installed_version "$pkg")
	if [ "$have" != "$ver" ]; then
		offered=$(distro_apt_versions "$pkg" | tr '\n' ' ' | sed 's/ $//')
		grep -qxF "$ver" <<<"$(distro_apt_versions "$pkg")" ||
			die "the kernel is Debian's $ver, but the archive offers $pkg ${offered:-in no version}${have:+ (installed: $have)}" \
				"the source must be exactly the kernel's: upgrade the kernel to $offered (apt install linux-image-amd64 linux-headers-amd64), boot it and rerun"
		distro_apt_install "$pkg=$ver" >&2 || die "could not install $pkg=$ver" "see the log above"
	fi
	[ -f "$tarball" ] || die "$pkg is installed but $tarball is missing" "reinstall $pkg"
	echo "$tarball"
}

# distro_prepare_meta HEADERS TARBALL RUSTC BINDGEN RUST_SRC CC RELEASE KEY:
# the cached directory holding the Rust metadata of the kernel (made when
# missing: about 5 minutes and 1.5 GB of scratch space, 150 MB kept).
distro_prepare_meta() {
	local hdr=$1 tarball=$2 rustc=$3 bindgen=$4 rust_src=$5 cc=$6 rel=$7 key=$8
	local meta=$LOFI_CACHE/distro/meta-$key work src obj f
	if [ -f "$meta/complete" ]; then
		echo "$meta"
		return
	fi
	rm -rf "$meta"
	mkdir -p "$LOFI_CACHE/distro"
	work=$(mktemp -d "$LOFI_CACHE/distro/prepare.XXXXXX")
	src=$work/src
	obj=$work/obj
	mkdir -p "$src" "$obj"
	log "unpacking $(basename "$tarball") (scratch space in $work)"
	tar -xaf "$tarball" -C "$src" --strip-components=1 || die "could not unpack $tarball"
	cp "$hdr/.config" "$obj/.config"
	log "make prepare of the kernel's source with its configuration and $($rustc --version | awk '{print $1, $2}') (about 5 minutes)"
	local args=(-C "$src" O="$obj" ARCH=x86 CROSS_COMPILE="${cc%gcc*}" CC="$cc" HOSTCC="$cc"
		RUSTC="$rustc" BINDGEN="$bindgen" RUST_LIB_SRC="$rust_src" KERNELRELEASE="$rel")
	run_logged "$LOFI_CACHE/logs/distro-prepare.log" make "${args[@]}" olddefconfig ||
		die "make olddefconfig of the kernel source failed"
	# The configuration must come through unchanged: a difference would
	# mean metadata for another kernel than the one running.
	if ! diff <(grep '^CONFIG_' "$hdr/.config" | sort) <(grep '^CONFIG_' "$obj/.config" | sort) >"$work/config.diff"; then
		log "the kernel's configuration changed in olddefconfig:"
		sed 's/^/    /' "$work/config.diff" | head -n 20 >&2
		grep -q 'CONFIG_RUST' "$work/config.diff" &&
			die "olddefconfig changed the kernel's Rust configuration" \
				"the source package, compiler or headers do not belong together; reinstall them at the kernel's version"
	fi
	run_logged "$LOFI_CACHE/logs/distro-prepare.log" make "${args[@]}" -j"$(nproc)" prepare ||
		die "make prepare of the kernel source failed" "see $LOFI_CACHE/logs/distro-prepare.log"
	mkdir -p "$work/meta/rust" "$work/meta/scripts"
	for f in "$obj"/rust/*.rmeta "$obj"/rust/*.so; do
		[ -f "$f" ] || die "make prepare made no $(basename "$f")" "see $LOFI_CACHE/logs/distro-prepare.log"
		cp "$f" "$work/meta/rust/"
	done
	strip --strip-debug "$work"/meta/rust/*.so 2>/dev/null || true
	cp "$obj/scripts/target.json" "$work/meta/scripts/" ||
		die "make prepare made no scripts/target.json"
	# The symbols the rebuilt Rust crates would export, to compare with
	# what the running kernel exports.
	cat "$obj"/rust/exports_*_generated.h 2>/dev/null |
		sed -n 's/^EXPORT_SYMBOL_RUST_GPL(\(.*\));$/\1/p' | sort -u >"$work/meta/rust-exports"
	[ -s "$work/meta/rust-exports" ] || die "make prepare wrote no rust/exports_*_generated.h"
	{
		echo "release=$rel"
		echo "rustc=$($rustc --version)"
		echo "source=$(basename "$tarball")"
	} >"$work/meta/origin"
	mkdir -p "$(dirname "$meta")"
	mv "$work/meta" "$meta"
	rm -rf "$work"
	touch "$meta/complete"
	echo "$meta"
}

# distro_check_exports META HEADERS: refuse metadata whose Rust symbols
# differ from those the kernel exports (lofi would not link, or worse,
# load against a different layout).
distro_check_exports() {
	local meta=$1 hdr=$2 kernel rebuilt missing extra total
	kernel=$(symvers_rust_exports "$hdr/Module.symvers")
	# Rust symbols (mangled, _R...) only: the C helpers the crates export
	# carry no hash.
	rebuilt=$(grep '^_R' "$meta/rust-exports" || true)
	total=$(grep -c . <<<"$kernel" || true)
	[ "$total" -gt 0 ] || die "the kernel's Module.symvers ($hdr) exports no Rust symbols" \
		"the kernel is not built with CONFIG_RUST, or its headers are damaged"
	missing=$(comm -23 <(echo "$kernel") <(echo "$rebuilt"))
	extra=$(comm -13 <(echo "$kernel") <(echo "$rebuilt"))
	if [ -n "$missing$extra" ]; then
		log "Rust exports of the kernel missing from the rebuilt metadata: $(grep -c . <<<"$missing") of $total, e.g."
		head -n 3 <<<"$missing" | sed 's/^/    /' >&2
		log "Rust exports of the rebuilt metadata the kernel lacks: $(grep -c . <<<"$extra"), e.g."
		head -n 3 <<<"$extra" | sed 's/^/    /' >&2
		die "the Rust metadata made from the kernel's source does not match the running kernel's exports" \
			"the source, the compiler or the configuration differ from the kernel's build; lofi cannot be built safely"
	fi
	log "the rebuilt Rust metadata matches all $total Rust exports of the kernel"
}

# distro_headers_with_meta HEADERS META RELEASE: a private copy of HEADERS
# (the build directory only; the shared source part stays where it is)
# with the Rust metadata added; printed.  Made afresh on every run.
distro_headers_with_meta() {
	local hdr=$1 meta=$2 rel=$3 copy
	copy=$LOFI_CACHE/distro/headers-$rel
	rm -rf "$copy"
	mkdir -p "$(dirname "$copy")"
	cp -aL "$hdr" "$copy" || die "could not copy $hdr to $copy"
	cp -a "$meta/rust" "$copy/"
	cp "$meta/scripts/target.json" "$copy/scripts/"
	# Debian's build directory names itself in its Makefile.
	if grep -q '^KBUILD_OUTPUT *=' "$copy/Makefile"; then
		sed -i "s|^KBUILD_OUTPUT *=.*|KBUILD_OUTPUT=$copy|" "$copy/Makefile"
	fi
	echo "$copy"
}
