#!/usr/bin/env bash
# `make run`: boot the test kernel with lofi loaded and show it working.
# The guest side is tests/guest/demo.sh; the run is judged like any VM test
# (its kernel log included), so a broken demo fails loudly.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

out=$LOFI_ROOT/tests/out/demo
mkdir -p "$LOFI_ROOT/tests/out"
status=0
"$LOFI_ROOT/tests/vm-run.sh" --out "$out" demo >"$out.summary" 2>&1 || status=$?
cat "$out/demo.log" 2>/dev/null || true
echo
grep -vE '^PASS demo$' "$out.summary" || true
exit $status
