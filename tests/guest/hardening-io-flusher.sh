#!/usr/bin/env bash
# lofi's I/O workers serve requests as loop's do: with PF_MEMALLOC_NOIO
# (their allocations must not recurse into block I/O) and
# PF_LOCAL_THROTTLE (their writes to the backing file are throttled
# against its own device only, not the lofi device they serve) set while
# they run a request.
#
# Under fio on /dev/lofi/N, the flags (field 9 of /proc/PID/stat) of the
# kworkers running an item of the device's workqueue (comm
# "kworker/...+lofiN") are sampled (lofi_hardening flags-sample).  The
# backing file is on the 9p share with the host, so that a worker sleeps
# in the backing file's I/O for a while; a sample of a worker asleep with
# an item current is one inside the work function (the workqueue's
# bookkeeping around it does not sleep, and no driver sets flags there).
# Pass: at least one such sample within 20 s, and every one of them with
# both flags.  Samples of running workers are reported, not judged.
# Figure: samples asleep, those with both flags.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"
command -v fio >/dev/null || fail "fio is not installed on the host (DEBIAN_PACKAGES in scripts/versions.env)"

img=$LOFI_RESULTS/hardening-io-flusher.img
fio_pid=
cleanup() {
	set +e
	[ -n "$fio_pid" ] && kill -KILL "$fio_pid" 2>/dev/null && wait "$fio_pid" 2>/dev/null
	lofi_teardown
	rm -f "$img"
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
truncate -s 64M "$img"
dev=$("$map" map "$img") || fail "map $img failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev did not appear"
settle

fio --name=io-flusher --filename="$dev" --ioengine=libaio --iodepth=8 --rw=randrw \
	--direct=1 --bs=4k --size=64M --time_based --runtime=120 --randrepeat=0 >fio.log 2>&1 &
fio_pid=$!
# completed I/Os of /dev/lofi/N (reads + writes, fields 1 and 5 of its stat)
ios() { awk '{print $1 + $5}' "/sys/block/lofi$n/stat"; }
before=$(ios)
fio_running() { [ "$(ios)" -gt $((before + 50)) ]; }
within 60 fio_running || fail "fio did not start I/O on $dev: $(cat fio.log)"
out=$("$hard" flags-sample "lofi$n" 20 200) || fail "flags-sample failed: $out"
echo "$out"
kill -INT "$fio_pid" 2>/dev/null
wait "$fio_pid" 2>/dev/null || true
fio_pid=
"$map" unmap "$n" || fail "unmap $n failed"

r() { result <(echo "$out") "$1"; }
asleep=$(r asleep)
both=$(r asleep-both)
figure hardening-io-flusher samples="$(r samples)" asleep="$asleep" asleep-both="$both" \
	asleep-noio-only="$(r asleep-noio-only)" asleep-throttle-only="$(r asleep-throttle-only)" asleep-neither="$(r asleep-neither)"
[ "$(r samples)" -gt 0 ] || fail "no kworker running an item of workqueue lofi$n was seen in 20 s of fio: $(tail -n 3 fio.log)"
[ "$asleep" -gt 0 ] || fail "no kworker of workqueue lofi$n was seen asleep in a request in 20 s ($(r samples) samples of running ones)"
[ "$both" = "$asleep" ] || fail "$((asleep - both)) of $asleep samples of lofi$n workers inside a request lack PF_MEMALLOC_NOIO or PF_LOCAL_THROTTLE (noio only: $(r asleep-noio-only), throttle only: $(r asleep-throttle-only), neither: $(r asleep-neither))"
unload_lofi
echo "ok: $asleep samples of lofi$n workers in a request, all with PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE"
