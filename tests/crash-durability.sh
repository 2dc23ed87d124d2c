#!/usr/bin/env bash
# Reliability scenario "crash durability": ext4 on lofi, its backing image
# on the guest's persistent disk (/dev/vda, a raw file here), hard-reset
# (sysrq 'b') mid-write round after round. Each round is one boot of the
# guest test tests/guest/crash-round.sh, which checks what the boots
# before it left (e2fsck -fn clean, every acknowledged file intact) and
# then writes until the reset; a last boot only checks.
#
# usage: tests/crash-durability.sh [--rounds N] [--out DIR]
#   --rounds  hard resets (default 3; 10 with LOFI_STRESS=1, make stress)
#   --out     state and logs (default tests/out/crash): disk.img, share/
#             (the acknowledged list, shared with the guest) and bootR/
#             (each boot's vm-run results)
# Prints "PASS crash-boot-R" per boot, "PASS crash-durability" or "FAIL
# crash-durability why", the figures and "N passed, N failed"; exits
# non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib/common.sh"

if [ "${LOFI_STRESS:-0}" = 1 ]; then rounds=10; else rounds=3; fi
out=$LOFI_ROOT/tests/out/crash
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) die "unknown argument $1" "usage: tests/crash-durability.sh [--rounds N] [--out DIR]" ;;
	esac
done
case $rounds in '' | *[!0-9]* | 0) die "--rounds wants a positive number, not '$rounds'" ;; esac

rm -rf "$out"
mkdir -p "$out/share"
truncate -s 1G "$out/disk.img"
export LOFI_VM_DISK=$out/disk.img LOFI_VM_SHARE=$out/share

passed=0
failed=0
# boot NAME: one boot of crash-round; prints its verdict line.
boot() {
	local name=$1 status=0
	"$LOFI_ROOT/tests/vm-run.sh" --timeout "${LOFI_CRASH_BOOT_TIMEOUT:-900}" \
		--out "$out/$name" crash-round >"$out/$name.log" 2>&1 || status=$?
	if [ "$status" -eq 0 ]; then
		echo "PASS $name ($(grep -m1 -E 'files acknowledged in round|hard resets' "$out/$name/crash-round.log" 2>/dev/null || echo "no summary"))"
		passed=$((passed + 1))
		return 0
	fi
	echo "FAIL $name (vm-run exit status $status; log: $out/$name.log)"
	grep -E '^(FAIL|LOST)' "$out/$name.log" "$out/$name/crash-round.log" 2>/dev/null | head -n 10 | sed 's/^/    /'
	tail -n 15 "$out/$name.log" | sed 's/^/    /'
	failed=$((failed + 1))
	return 1
}

log "crash durability: $rounds hard resets of a guest writing to ext4 on lofi (state: $out)"
start=$(date +%s)
ok=1
for r in $(seq 1 "$rounds"); do
	boot "crash-boot-$r" || { ok=0; break; }
done
# The last boot only checks what the resets left.
touch "$out/share/final"
boot crash-check || ok=0

figures=$out/crash-check/figures
if [ "$ok" = 1 ] && grep -q '^crash-durability .*acked-files-lost=0' "$figures" 2>/dev/null; then
	echo "PASS crash-durability ($rounds hard resets, $(($(date +%s) - start))s)"
	passed=$((passed + 1))
else
	echo "FAIL crash-durability (see the boots above; state in $out)"
	failed=$((failed + 1))
fi
print_figures "$figures"
echo "crash-durability: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
