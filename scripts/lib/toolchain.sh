# shellcheck shell=bash
# The Rust-for-Linux toolchain pieces that Debian 12 lacks: rust-src matching
# rustc, bindgen-cli, libclang and virtme-ng.  Each step is idempotent.

# rust-src of exactly the running rustc's version, unpacked under the cache.
ensure_rust_src() {
	local ver dir deb pkgver
	ver=$(rustc_version)
	dir=$LOFI_TOOLS/rust-src-$ver
	[ -f "$dir/.complete" ] && return 0
	private_apt_update
	pkgver=$(private_apt_versions rust-src | grep -E "^${ver//./\\.}\+" | head -n 1)
	[ -n "$pkgver" ] || die "no rust-src $ver in $DEBIAN_EXTRA_SUITE (rustc is $ver)" \
		"use a rustc whose version Debian packages as rust-src (apt-cache madison rust-src), or LOFI_APT_REFRESH=1"
	log "unpacking rust-src $pkgver"
	deb=$(private_apt_download "rust-src=$pkgver" "$LOFI_DOWNLOADS")
	rm -rf "$dir"
	mkdir -p "$dir"
	dpkg-deb -x "$deb" "$dir" || die "could not unpack $deb"
	[ -d "$dir/usr/src/rustc-$ver/library/core" ] || die "rust-src $pkgver has no library/core for rustc $ver"
	touch "$dir/.complete"
}

# A Python virtual environment with the libclang wheel and virtme-ng.
ensure_python_tools() {
	local want="libclang==$LIBCLANG_WHEEL_VERSION virtme-ng==$VIRTME_NG_VERSION"
	[ "$(cat "$LOFI_VENV/.complete" 2>/dev/null)" = "$want" ] && return 0
	log "installing $want into $LOFI_VENV"
	rm -rf "$LOFI_VENV"
	run_logged "$LOFI_CACHE/logs/venv.log" python3 -m venv "$LOFI_VENV" ||
		die "python3 -m venv failed" "install python3-venv"
	# shellcheck disable=SC2086
	run_logged "$LOFI_CACHE/logs/pip.log" "$LOFI_VENV/bin/pip" install --disable-pip-version-check $want ||
		die "pip install $want failed" "check that PyPI is reachable"
	[ -n "$(libclang_dir)" ] && [ -d "$(libclang_dir)" ] || die "the libclang wheel has no clang/native directory"
	echo "$want" >"$LOFI_VENV/.complete"
}

# matplotlib in the same virtual environment, for the benchmark's chart
# (scripts/bench.sh): installed on the first benchmark, not by plain
# provisioning.  A rebuilt environment loses it, and its stamp with it.
ensure_plot_tools() {
	local want="matplotlib==$MATPLOTLIB_VERSION"
	[ "$(cat "$LOFI_VENV/.plot-complete" 2>/dev/null)" = "$want" ] && return 0
	log "installing $want into $LOFI_VENV (for the benchmark's chart)"
	run_logged "$LOFI_CACHE/logs/pip-plot.log" "$LOFI_VENV/bin/pip" install --disable-pip-version-check "$want" ||
		die "pip install $want failed" "check that PyPI is reachable"
	"$LOFI_VENV/bin/python" -c 'import matplotlib' || die "matplotlib does not import after its install"
	echo "$want" >"$LOFI_VENV/.plot-complete"
}

ensure_bindgen() {
	[ -x "$LOFI_BINDGEN_ROOT/bin/bindgen" ] && return 0
	log "building bindgen-cli $BINDGEN_VERSION (about 2 minutes)"
	run_logged "$LOFI_CACHE/logs/bindgen.log" cargo install --locked --root "$LOFI_BINDGEN_ROOT" \
		bindgen-cli --version "$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed" "check that the Rust crate registry is reachable"
}

ensure_toolchain() {
	mkdir -p "$LOFI_TOOLS" "$LOFI_DOWNLOADS"
	command -v rustc >/dev/null || die "rustc not found" "install Rust with rustup (kernel 7.3 needs rustc >= 1.85)"
	ensure_debian_packages
	ensure_rust_src
	ensure_python_tools
	ensure_bindgen
}
