#!/usr/bin/env bash
# Format (or with --check, verify the format of) every kernel Rust file in
# the repository with the kernel's own rustfmt settings.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

check=()
[ "${1:-}" != --check ] || check=(--check)
src=$("$LOFI_ROOT/scripts/provision.sh" --print-source)
mapfile -t files < <(cd "$LOFI_ROOT" && git ls-files --cached --others --exclude-standard 'drivers/*.rs' 'tests/selftest/*.rs')
[ ${#files[@]} -gt 0 ] || exit 0
cd "$LOFI_ROOT"
rustfmt --edition 2021 --config-path "$src/.rustfmt.toml" "${check[@]}" "${files[@]}"
