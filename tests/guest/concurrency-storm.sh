#!/usr/bin/env bash
# Reliability scenario "concurrency storm": 8 processes (16 in the long
# form) for a bounded time, each mapping, writing, reading back and
# unmapping its own two images (by name and by N in turn), checking that
# every block written through /dev/lofiN reads back and is in the backing
# file after the unmap, while two more processes list every N and look the
# images up; then, round after round, two processes racing on one mapping:
#   unmap by N vs by N          one 0, the other ENXIO
#   unmap by name vs by name    one 0, the other ENOENT
#   unmap by name vs by N       one 0, the other ENOENT (name) / ENXIO (N)
#   MAP_FILE rw vs rw, rw vs ro of one file      one N, the other EBUSY
#   MAP_FILE_MINOR of one N with two files       N, the other EEXIST
#   SET_CAPACITY vs unmap by N                   unmap 0, resize 0 or ENXIO
#   BLKRRPART and opens of /dev/lofiNp1 of a labeled mapping vs unmap by N
#                               unmap 0, BLKRRPART 0 or EBUSY (ENXIO or EIO
#                               once force-unmapped), the nodes gone after,
#                               N mapped again
# (the unmap races plain, forced, and forced while the device, or p1, is
# held open). udev probes new disks, so a plain unmap may meet EBUSY: it is
# retried and counted, never taken for an error. Any other errno than the
# documented one, and any wrong outcome, fails the test.
# Figure: operations completed, undocumented errors (must be 0).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

storm=$prog_dir/lofi_storm
map=$prog_dir/lofi_map
need_progs "$storm" "$map"

workers=$(stress_or 8 16)
seconds=$(stress_or 20 300)
rounds=$(stress_or 30 1000)

trap lofi_teardown EXIT

load_lofi lofi_max_files=128
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

echo "=== storm: $workers workers and 2 queriers for $seconds s"
status=0
"$storm" storm "$PWD" "$workers" "$seconds" >storm.out 2>storm.err || status=$?
cat storm.out storm.err
grep -q '^RESULT ' storm.out || fail "the storm did not report (exit status $status)"
[ "$(result storm.out maps)" -gt 0 ] || fail "the storm mapped nothing"
[ "$(result storm.out ios)" -gt 0 ] || fail "the storm did no I/O"
expect_eq "mappings after the storm" "$("$map" list)" ""

echo "=== races: $rounds rounds of each"
rstatus=0
"$storm" races "$PWD" "$rounds" >races.out 2>races.err || rstatus=$?
cat races.out races.err
grep -q '^RESULT ' races.out || fail "the races did not report (exit status $rstatus)"
expect_eq "mappings after the races" "$("$map" list)" ""
[ "$(result races.out partition-opens)" -gt 0 ] ||
	fail "the partscan/unmap race never opened a partition"

ops=$(($(result storm.out ops) + $(result races.out ops)))
undocumented=$(($(result storm.out undocumented) + $(result races.out undocumented)))
failures=$(($(result storm.out failures) + $(result races.out failures)))
figure concurrency-storm ops="$ops" undocumented-errors="$undocumented" wrong-outcomes="$failures" \
	workers="$workers" seconds="$seconds" maps="$(result storm.out maps)" \
	storm-ebusy-retries="$(result storm.out ebusy-retries)" races="$(result races.out races)" \
	partscans="$(result races.out partscans)" partscan-ebusy="$(result races.out partscan-ebusy)"
if [ "$status" -ne 0 ] || [ "$rstatus" -ne 0 ] || [ "$undocumented" -ne 0 ] || [ "$failures" -ne 0 ]; then
	fail "$undocumented undocumented errors, $failures wrong outcomes (storm exit $status, races exit $rstatus); first: $(grep -h -m1 '^FAIL' storm.err races.err | head -n 1)"
fi

# Wait for removals after a last close (the forced races) to finish.
wait_for 10 eval '! compgen -G "/sys/block/lofi*" >/dev/null' || fail "lofi disks left: $(echo /sys/block/lofi*)"
unload_lofi
echo "ok: $ops operations, 0 undocumented errors"
