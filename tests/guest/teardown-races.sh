#!/usr/bin/env bash
# Reliability scenario "signals and teardown races":
#  1. LOFI_DKIOCSTATE waiters: one interrupted by a caught signal returns EINTR
#     and finds the device still fine; one killed by SIGKILL and one by
#     SIGTERM die at once, and the device then unmaps without force (no
#     open leaked); or the third is woken by a forced unmap with
#     LOFI_DKIO_DEV_GONE and the disk goes at its last close.
#  2. rmmod racing open + MAP_FILE: either the map succeeds and rmmod is
#     refused (EAGAIN), or rmmod wins and the map fails to open
#     /dev/lofictl; never a mapping with the module gone. lofi is loaded
#     again (load_lofi) for every round.
#  3. The last close of /dev/lofi/N racing its unmap (forced, detach at
#     last close, plain): the disk disappears after the last close, N is
#     free again, the data flushed before is in the backing file.
#  4. /dev/lofi/N opened in a loop while it is unmapped (forced, detach at
#     last close, plain): opens succeed or fail with ENXIO (ENOENT once the
#     node is gone), none succeeds after one failed or after a forced or
#     plain unmap returned; N is then reused for the next file, which the
#     opens read.
# The guest kernel log is judged by the runner (no warning, no hang).
# Figure: races run, failures (must be 0).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

storm=$prog_dir/lofi_storm
map=$prog_dir/lofi_map
need_progs "$storm" "$map"

signal_rounds=$(stress_or 16 160)
rmmod_rounds=$(stress_or 16 240)
close_rounds=$(stress_or 45 450)
detach_rounds=$(stress_or 45 450)

trap lofi_teardown EXIT

races=0
# run NAME ARGS...: one lofi_storm scenario; fails the test on a failure.
run() {
	local name=$1 status=0
	shift
	echo "=== $name"
	"$storm" "$name" "$@" >"$name.out" 2>"$name.err" || status=$?
	cat "$name.out" "$name.err"
	grep -q '^RESULT ' "$name.out" || fail "$name did not report (exit status $status): $(head -n 1 "$name.err")"
	if [ "$status" -ne 0 ]; then
		figure teardown-races races="$((races + $(result "$name.out" races)))" failures="$(($(result "$name.out" failures) + $(result "$name.out" undocumented)))" failed-in="$name"
		fail "$name: $(result "$name.out" failures) wrong outcomes, $(result "$name.out" undocumented) undocumented errnos; first: $(grep -m1 '^FAIL' "$name.err")"
	fi
	races=$((races + $(result "$name.out" races)))
	expect_eq "mappings after $name" "$("$map" list)" ""
}

no_disks() { ! compgen -G '/sys/block/lofi*' >/dev/null; }

load_lofi lofi_max_files=16
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
run signals "$PWD" "$signal_rounds"
run close-race "$PWD" "$close_rounds"
run open-detach "$PWD" "$detach_rounds"
wait_for 10 no_disks || fail "lofi disks left: $(echo /sys/block/lofi*)"
unload_lofi

echo "=== rmmod racing map: $rmmod_rounds rounds"
truncate -s 1M rmmod.img
map_won=0
rmmod_won=0
for i in $(seq 1 "$rmmod_rounds"); do
	load_lofi lofi_max_files=16
	wait_for 5 test -c /dev/lofictl || fail "round $i: /dev/lofictl did not appear"
	status=0
	out=$("$storm" rmmod-race "$PWD/rmmod.img" "$i" 2>rmmod.err) || status=$?
	[ "$status" -eq 0 ] || fail "round $i: rmmod racing map: ${out:-no report}: $(cat rmmod.err)"
	case $out in
	map-won*)
		map_won=$((map_won + 1))
		lofi_loaded || fail "round $i: the map succeeded ($out) but lofi is not loaded"
		expect_eq "round $i: mappings after the map won" "$("$map" list | awk '{print $1, $4}')" "1 $PWD/rmmod.img"
		"$map" unmap 1 || fail "round $i: unmapping the mapping that won the race failed"
		wait_for 10 no_disks || fail "round $i: /sys/block/lofi1 left after the unmap"
		unload_lofi
		;;
	rmmod-won*)
		rmmod_won=$((rmmod_won + 1))
		! lofi_loaded || fail "round $i: rmmod won ($out) but lofi is still loaded"
		no_disks || fail "round $i: lofi disks left with the module unloaded: $(echo /sys/block/lofi*)"
		wait_for 5 test ! -e /dev/lofictl || fail "round $i: /dev/lofictl left with the module unloaded"
		;;
	*) fail "round $i: unexpected report: $out" ;;
	esac
done
echo "rmmod racing map: map won $map_won times, rmmod won $rmmod_won times"
races=$((races + rmmod_rounds))

! lofi_loaded || fail "lofi is loaded at the end"
figure teardown-races races="$races" failures=0 rmmod-map-won="$map_won" rmmod-rmmod-won="$rmmod_won" \
	dkiocstate-eintr="$(result signals.out eintr)" waiters-killed="$(result signals.out killed)" \
	opens-during-detach="$(($(result open-detach.out opens-ok) + $(result open-detach.out opens-enxio) + $(result open-detach.out opens-enoent)))" \
	opens-enxio="$(result open-detach.out opens-enxio)"
echo "ok: $races teardown races, 0 failures"
