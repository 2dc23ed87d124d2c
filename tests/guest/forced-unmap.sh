#!/usr/bin/env bash
# A forced unmap of a device under load: fio writes to /dev/lofiN
# (O_DIRECT random writes) and a LOFI_DKIOCSTATE waiter sleeps on it when
# `lofi_map unmap N force` runs.  Then: fio stops with EIO (and does not
# hang), the waiter wakes with LOFI_DKIO_DEV_GONE, new opens fail with ENXIO
# while the device is still held open, N is not reusable (EEXIST) until the
# last close, the data written and fsynced before the unmap is intact in
# the backing file, and after the last close the node goes away and the
# next map gets the same N back.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
command -v fio >/dev/null || fail "fio is not installed on the host (DEBIAN_PACKAGES in scripts/versions.env)"

fio_pid=
waiter_pid=
cleanup() {
	set +e
	exec 7<&-
	for p in $fio_pid $waiter_pid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if lofi_loaded; then
		"$map" unmap-all force >/dev/null 2>&1
		sleep 1
		rmmod lofi 2>/dev/null
	fi
}
trap cleanup EXIT

# writes N: completed writes of /dev/lofiN (field 5 of its stat).
writes() { awk '{print $5}' "/sys/block/lofi$1/stat"; }
# fio_writing: fio has completed 50 writes since $before.
fio_writing() { [ "$(writes "$n")" -gt $((before + 50)) ]; }

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

img=$PWD/backing.img
truncate -s 64M "$img"
truncate -s 1M other.img
dev=$("$map" map "$img") || fail "map failed"
n=${dev#/dev/lofi}
wait_for 5 test -b "$dev" || fail "$dev is not a block device"

# The first 4 MiB: written and flushed before the unmap; fio stays above 8 MiB.
head -c 4M /dev/urandom >ref
dd if=ref of="$dev" bs=1M oflag=direct conv=fsync,notrunc,nocreat status=none || fail "writing the reference data failed"

"$map" wait-gone "$dev" >waiter.out 2>&1 &
waiter_pid=$!
wait_for 20 grep -q '^waiting: DKIO_INSERTED$' waiter.out || fail "the LOFI_DKIOCSTATE waiter did not start: $(cat waiter.out)"

start=$(date +%s)
timeout -k 10 60 fio --name=forced-unmap --filename="$dev" --ioengine=psync --rw=randwrite \
	--direct=1 --bs=4k --offset=8M --size=56M --time_based --runtime=30 \
	--continue_on_error=none --randrepeat=0 >fio.log 2>&1 &
fio_pid=$!
# Wait until fio's writes reach the disk, then give it a moment of load.
before=$(writes "$n")
wait_for 45 fio_writing || fail "fio did not start writing to $dev: $(cat fio.log)"
sleep 1
# Hold the gone device open from here, to see it in that state.
exec 7<"$dev"

"$map" unmap "$n" force || fail "forced unmap of $dev under fio failed"
unmapped=$(date +%s)
echo "forced unmap after $((unmapped - start)) s of fio"

fio_status=0
wait "$fio_pid" || fio_status=$?
fio_pid=
fio_end=$(date +%s)
echo "fio exited with status $fio_status, $((fio_end - unmapped)) s after the forced unmap"
cat fio.log
case $fio_status in
0) fail "fio ran to its end without an error: the forced unmap did not stop the I/O" ;;
124 | 137) fail "fio hung after the forced unmap (killed by timeout 60, status $fio_status)" ;;
esac
grep -qE 'Input/output error|EIO|err= *5[,/]' fio.log || fail "fio failed, but not with EIO"
[ $((fio_end - unmapped)) -le 20 ] || fail "fio took more than 20 s to stop after the forced unmap"

wait_for 20 grep -q '^DKIO_DEV_GONE$' waiter.out || fail "the LOFI_DKIOCSTATE waiter did not report DKIO_DEV_GONE: $(cat waiter.out)"
waiter_status=0
wait "$waiter_pid" || waiter_status=$?
waiter_pid=
cat waiter.out
expect_eq "the waiter's exit status" "$waiter_status" 0

# Gone, but held open by fd 7: not a mapping, not openable, N still taken.
if "$map" open "$dev" 2>open.err; then fail "opening the force-unmapped $dev succeeded"; fi
grep -q ENXIO open.err || fail "open of the force-unmapped $dev: want ENXIO, got: $(cat open.err)"
if "$map" status "$n" 2>status.err; then fail "GET_FILENAME of the force-unmapped N succeeded"; fi
grep -q ENXIO status.err || fail "GET_FILENAME of the force-unmapped N: want ENXIO, got: $(cat status.err)"
if "$map" map-minor "$n" "$PWD/other.img" 2>mapn.err; then fail "map-minor of the force-unmapped, still open N succeeded"; fi
grep -q EEXIST mapn.err || fail "map-minor of the force-unmapped N: want EEXIST, got: $(cat mapn.err)"
if dd if="$dev" of=/dev/null bs=4k count=1 status=none 2>/dev/null; then
	fail "reading the force-unmapped $dev succeeded"
fi

# The data flushed before the unmap is in the backing file.
cmp -n 4194304 ref "$img" || fail "the data fsynced before the forced unmap is not intact in the backing file"

# The last close removes the disk and frees N.
exec 7<&-
wait_for 10 test ! -e "$dev" || fail "$dev still exists after its last close"
wait_for 10 test ! -e "/sys/block/lofi$n" || fail "/sys/block/lofi$n still exists after its last close"
expect_eq "mappings after the forced unmap" "$("$map" list)" ""
# N is freed once the disk is removed, which may trail the node's removal
# a little: a map that gets another N meanwhile is undone and retried.
remap_same_n() {
	dev2=$("$map" map "$img") || fail "mapping the file again failed"
	[ "$dev2" = "$dev" ] && return 0
	"$map" unmap "$dev2" || fail "unmap $dev2 failed"
	return 1
}
wait_for 10 remap_same_n || fail "mapping the file again does not get $dev back (got $dev2)"
wait_for 5 test -b "$dev" || fail "$dev is not a block device after remapping"
cmp -n 4194304 ref "$dev" || fail "the remapped device does not read the data written before the forced unmap"
"$map" unmap "$dev" || fail "unmap failed"

unload_lofi
echo "ok: forced unmap under fio: EIO, LOFI_DKIO_DEV_GONE, ENXIO/EEXIST while held, data intact, N reused"
