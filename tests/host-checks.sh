#!/usr/bin/env bash
# Checks that run on the host, without a VM: formatting, lints, a
# warning-free build with and without clippy, against the test kernel and
# against the prepared tree of the minimal configuration (no KUnit, no
# COMPAT, no lockdep; made on first use), shell scripts, that no
# package registry host name appears in the repository, and for lofiadm
# its format, lints, host tests, man page and `make install`.
# Prints a PASS/FAIL line per check and "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/../scripts/lib/common.sh"
cd "$LOFI_ROOT" || exit 1

passed=0
failed=0
# check NAME CMD...: run CMD quietly; on failure show its output.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "PASS $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name"
		sed 's/^/    /' <<<"$out" | tail -n 40
		failed=$((failed + 1))
	fi
}

no_registry_hosts() {
	# Patterns are written with [.] so that this file does not name them.
	! git grep -nIiE 'deb[.]debian[.]org|ftp[.][a-z.]*debian[.]org|pypi[.]org|pythonhosted[.]org|crates[.]io|npmjs[.](org|com)|static[.]rust-lang[.]org' -- . ':!*.lock'
}

shell_scripts() {
	mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.sh' 'scripts/*' '.ci/*' | grep -vE '\.(env|config|md|py)$' | sort -u)
	shellcheck -x -S warning "${files[@]}"
}

# The ABI header compiles on its own (C99, pedantic) and the driver's Rust
# mirror has exactly its layout and constants, for 64- and 32-bit callers.
uapi_mirror() {
	local out=$LOFI_CACHE/host-checks bits line status=0
	mkdir -p "$out"
	for bits in 64 32; do
		gcc -m$bits -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude/uapi \
			-o "$out/uapi_mirror$bits" tests/host/uapi_mirror.c || return 1
		"$out/uapi_mirror$bits" >"$out/uapi_mirror$bits.txt" || return 1
	done
	cmp "$out/uapi_mirror64.txt" "$out/uapi_mirror32.txt" || { echo "32- and 64-bit layouts differ"; return 1; }
	while IFS= read -r line; do
		grep -qxF "$line" drivers/block/lofi/uapi.rs || { echo "uapi.rs lacks: $line"; status=1; }
	done <"$out/uapi_mirror64.txt"
	return $status
}

# lofiadm (tools/lofiadm): cargo with the target directory inside the
# package, whatever CARGO_TARGET_DIR the environment has.
lofiadm_cargo() {
	CARGO_TARGET_DIR=$LOFI_ROOT/tools/lofiadm/target \
		cargo "$1" --manifest-path "$LOFI_ROOT/tools/lofiadm/Cargo.toml" "${@:2}"
}

# The man page formats without a single groff warning.
lofiadm_man() {
	local out
	out=$(LC_ALL=C groff -t -man -ww -z tools/lofiadm/lofiadm.8 2>&1) || { echo "$out"; return 1; }
	[ -z "$out" ] || { echo "$out"; return 1; }
}

# `make install` puts the module, lofiadm and its man page under DESTDIR
# and PREFIX, the module under the kernel tree's release, the udev rule
# under DESTDIR's /etc/udev/rules.d.
make_install() {
	local dest status=0 f release
	dest=$(mktemp -d)
	make -s -C "$LOFI_ROOT" install DESTDIR="$dest" PREFIX=/opt/lofi >/dev/null || status=1
	if [ -n "${KDIR:-}" ]; then
		release=$(cat "$KDIR/include/config/kernel.release")
	else
		release=$(basename "$(dirname "$(dirname "$(echo "$dest"/lib/modules/*/extra/lofi.ko)")")")
	fi
	for f in "lib/modules/$release/extra/lofi.ko" opt/lofi/sbin/lofiadm opt/lofi/share/man/man8/lofiadm.8 etc/udev/rules.d/60-lofi.rules; do
		[ -f "$dest/$f" ] || { echo "make install did not install $f"; status=1; }
	done
	[ -x "$dest/opt/lofi/sbin/lofiadm" ] || { echo "lofiadm is not executable"; status=1; }
	"$dest/opt/lofi/sbin/lofiadm" --version || status=1
	rm -rf "$dest"
	return $status
}

check no-registry-host-names no_registry_hosts
check uapi-mirror uapi_mirror
check shellcheck shell_scripts
check rustfmt "$LOFI_ROOT/scripts/rust-fmt.sh" --check
check module-build-clippy env CLIPPY=1 "$LOFI_ROOT/scripts/build-module.sh"
check selftest-module-build-clippy env CLIPPY=1 "$LOFI_ROOT/scripts/build-module.sh" tests/selftest
check module-build "$LOFI_ROOT/scripts/build-module.sh"
check module-build-minimal-config "$LOFI_ROOT/scripts/build-minimal.sh"
check module-build-minimal-config-clippy env CLIPPY=1 "$LOFI_ROOT/scripts/build-minimal.sh"
check lofiadm-fmt lofiadm_cargo fmt --check
check lofiadm-clippy lofiadm_cargo clippy --locked --all-targets -- -D warnings
check lofiadm-test lofiadm_cargo test --locked
check lofiadm-man lofiadm_man
check compressed-format-selftest "$LOFI_ROOT/tests/compressed/selftest.sh"
check make-install make_install

echo "host-checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
