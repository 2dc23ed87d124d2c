#!/usr/bin/env bash
# Compile lofi against the minimal kernel configuration (tinyconfig +
# lofi-test.config + lofi-minimal.config: no KUnit, no COMPAT, no lock
# debugging), whose tree is only prepared, never built: scripts/provision.sh
# --minimal makes it on first use (a few minutes) and caches it.  Without
# vmlinux there is no Module.symvers for modpost, so the module's object is
# compiled, not linked into lofi.ko: what this proves is that the Rust code
# compiles, warning-free, on that configuration.  The sources are copied to
# a scratch directory and built there, so that build products of the test
# kernel's build in the work tree neither disturb this build nor are
# disturbed by it.
#
# usage: scripts/build-minimal.sh [SRC]
#   SRC   a directory with lofi's Kbuild and drivers/ (default: this
#         repository), e.g. an exported commit
# Environment: CLIPPY=1 (lint with clippy).  As in scripts/build-module.sh,
# any warning fails the build.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

src=$(cd "${1:-$LOFI_ROOT}" && pwd)
[ -f "$src/Kbuild" ] && [ -d "$src/drivers/block/lofi" ] ||
	die "$src holds no lofi module (Kbuild, drivers/block/lofi/)" "pass the repository or an export of it"
kdir=$("$LOFI_ROOT/scripts/provision.sh" --minimal)
kernel_build_env

# The kernel honours CLIPPY only on make's command line.
extra=()
[ "${CLIPPY:-0}" != 1 ] || extra+=(CLIPPY=1)

obj=drivers/block/lofi/lofi.o
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The module's sources only: Kbuild, the driver and the ABI header.
mkdir -p "$work/src"
(cd "$src" && find Kbuild drivers/block/lofi include -type f \( -name Kbuild -o -name Makefile -o -name Kconfig -o -name '*.rs' -o -name '*.c' -o -name '*.h' \) -print0) |
	(cd "$src" && xargs -0 cp --parents -t "$work/src")
status=0
make -C "$kdir" M="$work/src" CONFIG_BLK_DEV_LOFI=m "${extra[@]}" "$obj" 2>&1 |
	tee "$work/log" >&2 || status=$?
[ "$status" -eq 0 ] && [ -f "$work/src/$obj" ] ||
	die "lofi does not compile with the minimal configuration (against $kdir)" \
		"make it build without KUnit, COMPAT and lockdep (#[cfg(CONFIG_...)])"
if grep -qE '(^|: )(warning|error)(\[[A-Za-z0-9_:-]+\])?: ' "$work/log"; then
	die "lofi's build with the minimal configuration printed warnings" \
		"fix them: lofi builds warning-free on every configuration (also with CLIPPY=1)"
fi
log "lofi compiles warning-free with the minimal configuration${extra:+ (CLIPPY=1)}"
