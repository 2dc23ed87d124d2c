#!/usr/bin/env bash
# A forced unmap that cannot drain is killable, and one stuck teardown
# blocks neither other mappings nor rmmod.
#
# /dev/lofi/N is backed by a file on ext4 on a loop device, and written
# (dd oflag=direct, in a loop); the backing file system is frozen
# (fsfreeze -f), so that the write a lofi worker has in flight blocks in
# it.  A forced unmap of N then cannot drain:
#  - 3 s later it is still running (waiting for the write);
#  - kill -9 ends it within 5 s;
#  - meanwhile a second mapping, of a file on tmpfs, maps and unmaps
#    within 10 s, and rmmod lofi fails at once ("in use") instead of
#    hanging;
# after the thaw, N ends up gone (its disk removed once the writer is
# gone), nothing is left mapped, and lofi unloads.  The file system stays
# frozen for well under 60 s (the hung-task detector reports tasks
# blocked for 120 s).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

writer_pid=
unmapper_pid=
frozen=0
other=/dev/shm/lofi-hardening-other.img
cleanup() {
	set +e
	[ "$frozen" = 1 ] && fsfreeze -u "$bk_mnt"
	for p in $writer_pid $unmapper_pid; do
		kill -KILL "$p" 2>/dev/null
	done
	for p in $writer_pid $unmapper_pid; do
		wait_exit 30 "$p"
		wait "$p" 2>/dev/null
	done
	rm -f "$other"
	lofi_teardown
	bk_teardown
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

bk_setup 96M
truncate -s 32M "$bk_mnt/image.img"
dev=$("$map" map "$bk_mnt/image.img") || fail "map failed"
n=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev did not appear"
settle

writes() { awk '{print $5}' "/sys/block/lofi$n/stat"; }
# Writes until a write fails (EIO once the device is gone).  nocreat: if
# the disk, and so its node, goes between two runs of dd, dd must fail
# rather than make a regular file of that name in /dev, where it would
# keep devtmpfs from making the node of the next lofiN.
(
	i=0
	while dd if=/dev/urandom of="$dev" bs=64k count=4 seek=$((i % 128)) oflag=direct conv=notrunc,nocreat status=none 2>/dev/null; do
		i=$((i + 1))
	done
) &
writer_pid=$!
before=$(writes)
writing() { [ "$(writes)" -gt $((before + 8)) ]; }
within 30 writing || fail "the writer does not write to $dev"

fsfreeze -f "$bk_mnt" || fail "fsfreeze -f failed"
frozen=1
frozen_at=$(date +%s)
# Let the next write reach the worker and block in the frozen file system.
sleep 1

"$hard" unmap-once "$n" force >unmap.out 2>&1 &
unmapper_pid=$!
sleep 3
if running "$unmapper_pid"; then
	echo "the forced unmap is still running after 3 s (draining the write blocked in the frozen file system)"
	kill -KILL "$unmapper_pid"
	if wait_exit 5 "$unmapper_pid"; then
		echo "kill -9 ended the stuck forced unmap"
		wait "$unmapper_pid" 2>/dev/null || true
		unmapper_pid=
	else
		bad "kill -9 did not end the forced unmap stuck draining within 5 s (state $(sed 's/.*) //' "/proc/$unmapper_pid/stat" | cut -d' ' -f1)): it is not killable"
	fi
else
	wait "$unmapper_pid" 2>/dev/null || true
	unmapper_pid=
	bad "the forced unmap returned within 3 s although a write is blocked in the frozen backing file system: $(cat unmap.out)"
fi

echo "=== another mapping meanwhile"
truncate -s 4M "$other"
start=$(date +%s%N)
if dev2=$(timeout 10 "$map" map "$other" 2>map2.err); then
	settle
	timeout 10 "$map" unmap "$dev2" 2>unmap2.err || bad "unmapping another mapping ($dev2) while the forced unmap is stuck failed or hung: $(cat unmap2.err)"
else
	bad "mapping another file ($other) while the forced unmap is stuck failed or hung: $(cat map2.err)"
fi
echo "the other mapping mapped and unmapped in $((($(date +%s%N) - start) / 1000000)) ms"

echo "=== rmmod meanwhile"
start=$(date +%s%N)
status=0
timeout 10 rmmod lofi >rmmod.out 2>&1 || status=$?
took=$((($(date +%s%N) - start) / 1000000))
echo "rmmod lofi: status $status after $took ms: $(cat rmmod.out)"
case $status in
0) fail "rmmod lofi succeeded with a mapping stuck in its teardown" ;;
124 | 137) bad "rmmod lofi hung while the forced unmap is stuck (killed after 10 s)" ;;
*) grep -qiE 'in use|busy' rmmod.out || bad "rmmod lofi failed, but not for being in use: $(cat rmmod.out)" ;;
esac
lofi_loaded || fail "lofi is not loaded after the refused rmmod"

fsfreeze -u "$bk_mnt" || fail "fsfreeze -u failed"
frozen=0
echo "the backing file system was frozen for $(($(date +%s) - frozen_at)) s"

# The unmap (if it survived) finishes, the writer fails and goes, the disk goes.
if [ -n "$unmapper_pid" ]; then
	wait_exit 30 "$unmapper_pid" || fail "the forced unmap did not end within 30 s of the thaw"
	status=0
	wait "$unmapper_pid" || status=$?
	unmapper_pid=
	echo "the forced unmap ended with status $status: $(cat unmap.out)"
fi
if ! wait_exit 30 "$writer_pid"; then
	echo "the writer still runs 30 s after the thaw: killing it"
	kill -KILL "$writer_pid"
	wait_exit 30 "$writer_pid" || fail "the writer did not die"
fi
wait "$writer_pid" 2>/dev/null || true
writer_pid=
within 30 test ! -e "/sys/block/lofi$n" || fail "/sys/block/lofi$n still exists after the thaw and its last close: the stuck teardown never finished"
expect_eq "mappings at the end" "$("$map" list)" ""
[ "$failures" -eq 0 ] || fail "$failures checks failed (see the FAIL lines above)"
unload_lofi
echo "ok: the stuck forced unmap was killable, other mappings and rmmod were not blocked, the device went after the thaw"
