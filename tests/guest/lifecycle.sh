#!/usr/bin/env bash
# Mappings come and go cleanly: 200 map/unmap cycles of one file (1000 in
# the long form, make stress; by N and
# by name alternately, the node appearing and vanishing each time, the
# same lowest N every time, I/O every tenth cycle; about 0.15 s a cycle
# under QEMU TCG on an idle two-core host, twice that on a slow or busy
# one; LOFI_LIFECYCLE_CYCLES=N runs N instead, LOFI_LIFECYCLE_BUDGET=S
# stops the loop early, saying so, after S seconds and at least 100
# cycles, for quick local runs); rmmod is refused while a mapping exists,
# and while a force-unmapped device is still held open, and succeeds once
# everything is gone; with lofi_max_files=16 all of
# N = 1..16 are handed out in order and usable, then MAP_FILE fails with
# EAGAIN, and everything unmaps again.
# time-limit: 900
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
# The number of map/unmap cycles and their time budget in seconds.
cycles=${LOFI_LIFECYCLE_CYCLES:-$(stress_or 200 1000)}
budget=${LOFI_LIFECYCLE_BUDGET:-0}

cleanup() {
	set +e
	exec 7<&-
	if lofi_loaded; then
		"$map" unmap-all force >/dev/null 2>&1
		sleep 1
		rmmod lofi 2>/dev/null
	fi
}
trap cleanup EXIT

# rmmod_refused WHY: rmmod must fail and leave lofi loaded.
rmmod_refused() {
	if rmmod lofi 2>rmmod.err; then
		fail "rmmod lofi succeeded $1"
	fi
	lofi_loaded || fail "lofi is gone after a failed rmmod ($1)"
	grep -qiE 'in use|busy' rmmod.err || fail "rmmod $1: unexpected error: $(cat rmmod.err)"
}

load_lofi lofi_max_files=16
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
expect_eq "GET_MAXMINOR" "$("$map" maxminor)" 16

# 1. Map/unmap cycles, in one process (a fork per step is slow under TCG).
truncate -s 1M cycle.img
"$map" cycle "$PWD/cycle.img" "$cycles" "$budget" 2>&1 | tee cycle.log ||
	fail "map/unmap cycles failed: $(tail -n 1 cycle.log)"
done_cycles=$(awk '/ map\/unmap cycles of /{print $1}' cycle.log)
[ -n "$done_cycles" ] || fail "map/unmap cycles did not report"
expect_eq "mappings after the cycles" "$("$map" list)" ""
! compgen -G '/sys/block/lofi*' >/dev/null || fail "lofi disks left after the cycles: $(echo /sys/block/lofi*)"

# 2. rmmod while a mapping exists.
dev=$("$map" map "$PWD/cycle.img") || fail "map failed"
rmmod_refused "while $dev is mapped"
expect_eq "the mapping after the refused rmmod" "$("$map" filename "$dev")" "$PWD/cycle.img"
"$map" unmap "$dev" || fail "unmap failed"
unload_lofi
echo "ok: rmmod refused while mapped, then succeeded"

# 3. rmmod while a force-unmapped device is still open.
load_lofi lofi_max_files=16
dev=$("$map" map "$PWD/cycle.img") || fail "map failed"
wait_for 5 test -b "$dev" || fail "$dev is not a block device"
exec 7<"$dev"
"$map" unmap "$dev" force || fail "forced unmap failed"
expect_eq "mappings after the forced unmap" "$("$map" list)" ""
rmmod_refused "while the force-unmapped $dev is open"
exec 7<&-
wait_for 10 test ! -e "$dev" || fail "$dev still exists after its last close"
unload_lofi
echo "ok: rmmod refused while a force-unmapped device is open, then succeeded"

# 4. Fill every N, then EAGAIN.
load_lofi lofi_max_files=16
for i in $(seq 1 16); do
	truncate -s 512K "fill$i.img"
	dev=$("$map" map "$PWD/fill$i.img") || fail "map #$i failed"
	expect_eq "map #$i" "$dev" "/dev/lofi$i"
done
for i in $(seq 1 16); do
	wait_for 5 test -b "/dev/lofi$i" || fail "/dev/lofi$i is not a block device"
	expect_eq "size of /dev/lofi$i" "$(blockdev --getsize64 "/dev/lofi$i")" 524288
	printf 'lofi %08d' "$i" | dd of="/dev/lofi$i" bs=512 conv=sync,notrunc,nocreat oflag=direct status=none ||
		fail "write to /dev/lofi$i failed"
done
truncate -s 512K fill17.img
if "$map" map "$PWD/fill17.img" 2>map.err; then fail "a 17th map with lofi_max_files=16 succeeded"; fi
grep -q EAGAIN map.err || fail "17th map: want EAGAIN, got: $(cat map.err)"
expect_eq "mapped N after EAGAIN" "$("$map" list | awk '{print $1}' | tr '\n' ' ')" "$(seq 1 16 | tr '\n' ' ')"
for i in $(seq 1 16); do
	expect_eq "what /dev/lofi$i wrote to fill$i.img" "$(head -c 13 "fill$i.img")" "$(printf 'lofi %08d' "$i")"
	"$map" unmap "/dev/lofi$i" || fail "unmap /dev/lofi$i failed"
done
expect_eq "mappings after unmapping all" "$("$map" list)" ""
unload_lofi
echo "ok: $done_cycles map/unmap cycles, rmmod refusals, all 16 N then EAGAIN"
