# shellcheck shell=bash
# The distribution kernel `make install-distro` builds for: its release,
# headers, configuration and package version, and the Rust toolchain its
# configuration names.  Source after common.sh.  Every check that fails
# says what is missing and what to do (scripts/install-distro.sh).

# kconfig_value FILE NAME: the value of CONFIG_NAME in FILE, quotes removed
# (empty when unset).
kconfig_value() {
	sed -n "s/^CONFIG_$2=//p" "$1" | head -n 1 | sed 's/^"\(.*\)"$/\1/'
}

# distro_apt_install PKG...: install Debian packages (no recommends).
distro_apt_install() {
	log "installing from Debian's archive: $*"
	run_logged "$LOFI_CACHE/logs/distro-apt-install.log" as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "$@"
}

# distro_apt_has PKG: whether the machine's apt sources offer PKG at all.
distro_apt_has() {
	[ -n "$(distro_apt_versions "$1")" ]
}

# distro_apt_versions PKG: the versions of PKG the apt sources offer.
distro_apt_versions() {
	{ apt-cache madison "$1" 2>/dev/null || true; } | awk -F'|' '{gsub(/ /, "", $2); print $2}'
}

# distro_installed_version PKG: the installed version of PKG, or nothing.
distro_installed_version() {
	{ dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null || true; } |
		awk '$1 == "install" && $3 == "installed" { print $4 }'
}

# distro_find_headers RELEASE: the headers' build directory of RELEASE,
# installing Debian's linux-headers-RELEASE when it is missing and offered.
# LOFI_KERNEL_HEADERS names another directory (headers unpacked by hand).
distro_find_headers() {
	local rel=$1 dir
	dir=${LOFI_KERNEL_HEADERS:-/lib/modules/$rel/build}
	if [ -z "${LOFI_KERNEL_HEADERS:-}" ] && [ ! -f "$dir/.config" ] && distro_apt_has "linux-headers-$rel"; then
		distro_apt_install "linux-headers-$rel" >&2 ||
			die "could not install linux-headers-$rel" "see the log above; install it by hand and rerun"
	fi
	[ -f "$dir/.config" ] && [ -f "$dir/Makefile" ] ||
		die "no kernel headers for $rel (no $dir/.config)" \
			"install linux-headers-$rel (apt install linux-headers-$rel), or set LOFI_KERNEL_HEADERS to its build directory"
	[ -f "$dir/Module.symvers" ] ||
		die "the headers in $dir have no Module.symvers" \
			"reinstall linux-headers-$rel: modules cannot be linked against the kernel without it"
	(cd "$dir" && pwd -P)
}

# distro_require_rust HEADERS: refuse a kernel built without Rust support.
distro_require_rust() {
	local cfg=$1/.config
	[ "$(kconfig_value "$cfg" RUST)" = y ] ||
		die "the kernel of $1 is built without CONFIG_RUST: a Rust module cannot be loaded into it" \
			"boot a Rust-enabled kernel (Debian: linux-image-amd64 from trixie-backports, 7.3) and rerun"
	[ -n "$(kconfig_value "$cfg" RUSTC_VERSION_TEXT)" ] ||
		die "$cfg has CONFIG_RUST=y but no CONFIG_RUSTC_VERSION_TEXT" \
			"these headers do not come from a kernel 6.11 or newer; lofi needs 7.2 or 7.3"
}

# distro_kernel_version HEADERS RELEASE: the Debian version of the kernel
# package (e.g. 7.3.4-1~bpo13+1): LOFI_KERNEL_VERSION, else that of the
# package owning the headers.
distro_kernel_version() {
	local hdr=$1 rel=$2 pkg v
	if [ -n "${LOFI_KERNEL_VERSION:-}" ]; then
		echo "$LOFI_KERNEL_VERSION"
		return
	fi
	pkg=$({ dpkg-query -S "$hdr/.config" 2>/dev/null || true; } | head -n 1 | cut -d: -f1)
	[ -n "$pkg" ] || pkg=linux-headers-$rel
	v=$(distro_installed_version "$pkg")
	[ -n "$v" ] ||
		die "cannot tell which Debian kernel version the headers in $hdr belong to (no package owns them)" \
			"set LOFI_KERNEL_VERSION to the kernel package's version (dpkg -l 'linux-image-*')"
	echo "$v"
}

# distro_find_rustc WANTED_TEXT: the path of a rustc whose --version is
# exactly WANTED_TEXT, installing Debian's rustc of that version when the
# archive has it; refuses otherwise.  A Rust module must be compiled by
# the very compiler the kernel was: the symbol names the kernel exports
# carry hashes of the compiler version, and the flags in the kernel's
# Makefiles are chosen for it.
distro_find_rustc() {
	local want=$1 ver cand debv
	ver=$(awk '{print $2}' <<<"$want")
	for cand in "${RUSTC:-}" /usr/bin/rustc "/usr/bin/rustc-${ver%.*}" "$(command -v rustc 2>/dev/null)"; do
		[ -n "$cand" ] && [ -x "$cand" ] || continue
		if [ "$("$cand" --version 2>/dev/null)" = "$want" ]; then
			echo "$cand"
			return
		fi
	done
	debv=$(distro_apt_versions rustc | awk -v v="$ver" '{ u = $0; sub(/^[0-9]+:/, "", u); sub(/[+~-].*/, "", u); if (u == v) { print; exit } }')
	if [ -n "$debv" ]; then
		distro_apt_install "rustc=$debv" "libstd-rust-dev=$debv" >&2 ||
			die "could not install rustc $debv" "see the log above"
		if [ "$(/usr/bin/rustc --version 2>/dev/null)" = "$want" ]; then
			echo /usr/bin/rustc
			return
		fi
		die "Debian's rustc $debv reports '$(/usr/bin/rustc --version 2>/dev/null)', not '$want'" \
			"the kernel was built by another build of rustc $ver; install exactly that one and set RUSTC"
	fi
	die "the kernel was built with '$want' and no such rustc is installed or offered (Debian offers rustc $(distro_apt_versions rustc | tr '\n' ' '| sed 's/ $//'))" \
		"install rustc $ver (Debian packages it for the suite the kernel comes from) and set RUSTC; another version cannot work: the kernel's Rust symbol names depend on the exact compiler"
}

# distro_rust_src RUSTC VERSION: the directory of the Rust standard
# library's sources for RUSTC (Debian: the rust-src package of the same
# version), installed when missing.
distro_rust_src() {
	local rustc=$1 debv dir
	dir=$("$rustc" --print sysroot)/lib/rustlib/src/rust/library
	if [ ! -d "$dir/core" ]; then
		debv=$(distro_installed_version rustc)
		[ -n "$debv" ] || die "no Rust standard library sources for $rustc in $dir" "install them (rust-src) and rerun"
		distro_apt_install "rust-src=$debv" >&2 || die "could not install rust-src $debv" "see the log above"
	fi
	[ -d "$dir/core" ] || die "rust-src is installed but $dir/core is missing" "reinstall rust-src"
	(cd "$dir" && pwd -P)
}

# distro_find_bindgen WANTED_TEXT: a bindgen of the version the kernel was
# configured with (CONFIG_BINDGEN_VERSION_TEXT), installed from Debian when
# missing.  A newer one works as well (bindgen's output does not enter
# symbol names), so any version at least the wanted one is accepted.
distro_find_bindgen() {
	local want=$1 have cand
	for cand in "${BINDGEN:-}" /usr/bin/bindgen "$(command -v bindgen 2>/dev/null)"; do
		[ -n "$cand" ] && [ -x "$cand" ] || continue
		have=$({ "$cand" --version 2>/dev/null || true; } | awk '{print $2}')
		if [ -n "$have" ] && version_at_least "$have" "$(awk '{print $2}' <<<"$want")"; then
			echo "$cand"
			return
		fi
	done
	distro_apt_has bindgen && distro_apt_install bindgen >&2 && [ -x /usr/bin/bindgen ] &&
		version_at_least "$(/usr/bin/bindgen --version | awk '{print $2}')" "$(awk '{print $2}' <<<"$want")" &&
		{ echo /usr/bin/bindgen; return; }
	die "no bindgen of version ${want#bindgen } or newer (the kernel was configured with '$want')" \
		"install Debian's bindgen package of the kernel's suite, or set BINDGEN"
}

# version_at_least A B: whether dotted version A >= B.
version_at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}
