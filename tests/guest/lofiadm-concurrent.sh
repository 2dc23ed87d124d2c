#!/usr/bin/env bash
# 16 lofiadm -a at once, from 16 processes: all succeed (none EBUSY: the
# control device has no exclusive open), get distinct devices 1..16, and
# each finds its node in place when lofiadm returns; then 16 lofiadm -d
# at once remove them all.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

trap lofiadm_cleanup EXIT
count=16

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
for i in $(seq 1 $count); do
	truncate -s 1M "img$i"
done

echo "=== $count concurrent maps"
pids=()
for i in $(seq 1 $count); do
	# Each child checks its own node at once, before anything else runs.
	(
		dev=$("$LOFIADM" -a "img$i" 2>"map$i.err") || exit 1
		echo "$dev" >"map$i.out"
		[ -b "$dev" ] || { echo "$dev is not a block device when lofiadm returns" >>"map$i.err"; exit 1; }
	) &
	pids+=($!)
done
failed=0
for i in $(seq 1 $count); do
	wait "${pids[$((i - 1))]}" || { failed=$((failed + 1)); echo "map $i failed: $(cat "map$i.err")"; }
done
[ "$failed" -eq 0 ] || fail "$failed of $count concurrent lofiadm -a failed"
expect_eq "devices handed out" "$(cat map*.out | sort -t/ -k4 -n | tr '\n' ' ')" \
	"$(for i in $(seq 1 $count); do printf '/dev/lofi/%d ' "$i"; done)"
# Each device is the one its file was mapped to.
for i in $(seq 1 $count); do
	ok "img$i"
	expect_eq "device of img$i" "$OUT" "$(cat "map$i.out")"
done

echo "=== $count concurrent unmaps"
pids=()
for i in $(seq 1 $count); do
	"$LOFIADM" -d "img$i" 2>"unmap$i.err" &
	pids+=($!)
done
failed=0
for i in $(seq 1 $count); do
	wait "${pids[$((i - 1))]}" || { failed=$((failed + 1)); echo "unmap $i failed: $(cat "unmap$i.err")"; }
done
[ "$failed" -eq 0 ] || fail "$failed of $count concurrent lofiadm -d failed"
expect_listing
unload_lofi
echo "ok: $count concurrent maps got distinct devices, and unmapped again"
