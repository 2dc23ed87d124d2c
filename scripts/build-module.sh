#!/usr/bin/env bash
# Build a kernel module of this repository against a Rust-enabled kernel
# build tree: the cached test kernel (provisioned on demand) or $KDIR.
#
# usage: scripts/build-module.sh [DIR [MAKE ARGS...]]
#   DIR   the module directory, relative to the repository (default: the
#         repository root, whose Kbuild builds drivers/block/lofi/lofi.ko)
# Environment: KDIR (another kernel build tree), CLIPPY=1 (lint with clippy;
# any warning fails the build).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

dir=${1:-.}
[ $# -eq 0 ] || shift
if [ -z "${KDIR:-}" ]; then
	KDIR=$("$LOFI_ROOT/scripts/provision.sh")
	kernel_build_env
fi
[ -f "$KDIR/Makefile" ] && [ -f "$KDIR/.config" ] ||
	die "$KDIR is not a configured kernel build tree" "point KDIR at a tree where 'make' has run"
grep -q '^CONFIG_RUST=y' "$KDIR/.config" ||
	die "$KDIR is not built with CONFIG_RUST=y" "build a Rust-enabled kernel, or unset KDIR to use the cached one"

# The kernel honours CLIPPY only on make's command line.
extra=()
[ "${CLIPPY:-0}" != 1 ] || extra+=(CLIPPY=1)

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
make -C "$KDIR" M="$LOFI_ROOT/${dir#./}" CONFIG_BLK_DEV_LOFI=m "${extra[@]}" "$@" modules 2>&1 | tee "$out" >&2 || status=$?
[ "$status" -eq 0 ] || die "module build failed in $dir (against $KDIR)"
# A division by a value the compiler cannot prove non-zero is a panic path
# (`panic_const_div_by_zero`/`_rem_by_zero`), and objtool of some
# toolchains (Debian's headers with its rustc) reports the function that
# ends in it as falling through: say such divisions with `checked_*`.
moddir=$(cd "$LOFI_ROOT/${dir#./}" && pwd)
while IFS= read -r -d '' ko; do
	# grep reads all of nm's output (no -q): no SIGPIPE under pipefail.
	if nm -u "$moddir/$ko" | grep -E 'panic_const_(div|rem)_by_zero' >/dev/null; then
		die "$ko can panic on a division by zero" \
			"use checked_div/checked_rem where the divisor is not a constant (see: objdump -dr $moddir/$ko | grep -B30 by_zero)"
	fi
done < <(find "$moddir" -name '*.ko' -printf '%P\0')
# Warnings (rustc's, the C compiler's, objtool's: "file: warning: ...") do
# not fail a kernel build by themselves; lofi has none.
if grep -qE '(^|: )(warning|error)(\[[A-Za-z0-9_:-]+\])?: ' "$out"; then
	die "the build of $dir printed warnings" "fix them: lofi builds warning-free (also with CLIPPY=1)"
fi
