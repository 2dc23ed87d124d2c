#!/usr/bin/env bash
# `make vm`: an interactive root shell in the test VM, with the freshly built
# lofi.ko in the work tree (not loaded: `insmod drivers/block/lofi/lofi.ko`).  The host's root
# filesystem is the guest's (read-only, with a writable /tmp); the
# repository's tests/out/ is writable.  Leave with `exit` or Ctrl-D.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

KDIR=${KDIR:-$("$LOFI_ROOT/scripts/provision.sh")}
export KDIR
"$LOFI_ROOT/scripts/build-module.sh"
mkdir -p "$LOFI_ROOT/tests/out"
args=(--run "$KDIR/arch/x86/boot/bzImage" --force-9p --disable-microvm
	--cpus "${LOFI_VM_CPUS:-2}" --memory "${LOFI_VM_MEMORY:-2G}" --rwdir="$LOFI_ROOT/tests/out")
[ "${LOFI_KVM:-0}" = 1 ] || args+=(--disable-kvm)
[ -t 0 ] || die "make vm needs a terminal" "run it from an interactive shell"
log "booting the test kernel (TCG: about 30 s); then: insmod drivers/block/lofi/lofi.ko"
cd "$LOFI_ROOT"
export PATH="$LOFI_VENV/bin:$PATH"
exec "$LOFI_VENV/bin/vng" "${args[@]}"
