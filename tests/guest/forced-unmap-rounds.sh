#!/usr/bin/env bash
# Forced unmap under load, repeated (5 rounds; 50 with LOFI_STRESS=1).
# Each round maps a fresh 32 MiB image (buffered in odd rounds, with direct
# I/O in even ones) and runs two loads on its device:
# fio (4 KiB O_DIRECT random writes interleaved with verifying reads of
# what it wrote, crc32c) above 8 MiB, and lofi_durable (stamped blocks
# below 4 MiB, fdatasync every eighth write, each acknowledged write
# recorded). After a random 0.2-1.5 s of load the device is force-unmapped.
# Every round must end within its bound (no hang); neither load may fail
# before the unmap, and both must then fail with EIO; fio must never see a
# verify mismatch; every write lofi_durable had acknowledged must be in
# the backing file; the disk must go away and N come free.
# Figure: rounds, hung rounds, verify mismatches, acknowledged writes lost.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
durable=$prog_dir/lofi_durable
need_progs "$map" "$durable"
command -v fio >/dev/null || fail "fio is not installed on the host (DEBIAN_PACKAGES in scripts/versions.env)"
rounds=$(stress_or 5 50)

fio_pid=
durable_pid=
cleanup() {
	set +e
	for p in $fio_pid $durable_pid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	lofi_teardown
}
trap cleanup EXIT

# fio_writes: the writes fio reported issuing in its last status.
fio_writes() { sed -n 's/.*issued rwts: total=[0-9]*,\([0-9]*\),.*/\1/p' fio.log | tail -n 1; }
# loaded: both loads are writing (fio reports its writes every second;
# lofi_durable says "started" after 50 acknowledged writes).
loaded() { grep -q '^started' durable.out && [ "$(fio_writes)" -gt 0 ] 2>/dev/null; }
# exited PID: the child PID has exited (a zombie until waited for).
exited() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# reap NAME PID: wait up to 30 s for a load to end after the unmap; a load
# still running then is hung: its kernel stacks are shown and it is killed.
# Sets REAPED to its exit status (124 for hung).
reap() {
	local t
	REAPED=0
	if ! wait_for 30 exited "$2"; then
		echo "round $r: $1 still runs 30 s after the forced unmap; its stacks:" >&2
		for t in /proc/"$2"/task/*; do
			echo "  task ${t##*/}: $(cat "$t/wchan" 2>/dev/null)" >&2
			sed 's/^/    /' "$t/stack" >&2 2>/dev/null
		done
		kill -KILL "$2" 2>/dev/null
		wait "$2" 2>/dev/null
		REAPED=124
		return
	fi
	wait "$2" || REAPED=$?
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

hung=0
mismatches=0
lost=0
acked=0
failures=0
for ((r = 1; r <= rounds; r++)); do
	img=$PWD/round.img
	rm -f "$img" marker
	truncate -s 32M "$img"
	# Odd rounds map buffered, even rounds with direct I/O (which the
	# scratch file system must grant).
	mapping=buffered
	[ $((r % 2)) -eq 1 ] || mapping=direct
	dev=$("$map" map "$img" ${mapping#buffered} 2>map.err) || fail "round $r: map ($mapping) failed: $(cat map.err)"
	! grep -q "direct I/O refused" map.err || fail "round $r: direct I/O refused for $img"
	n=${dev#/dev/lofi}
	wait_for 5 test -b "$dev" || fail "round $r: $dev is not a block device"
	echo "round $r: $dev mapped ($mapping), starting fio and lofi_durable"

	"$durable" "$dev" "$img" 1024 "$PWD/marker" "$r" >durable.out 2>durable.err &
	durable_pid=$!
	# --thread: the job runs in fio's own process, whose I/O is counted.
	fio --name=round"$r" --thread --filename="$dev" --ioengine=psync --direct=1 --bs=4k \
		--offset=8M --size=24M --rw=randwrite --verify=crc32c --verify_backlog=16 \
		--verify_fatal=1 --time_based --runtime=300 --continue_on_error=none \
		--randrepeat=0 --status-interval=1 >fio.log 2>&1 &
	fio_pid=$!
	if ! wait_for 60 loaded; then
		echo 1 >/proc/sys/kernel/sysrq
		echo w >/proc/sysrq-trigger
		fail "round $r: the loads did not start writing to $dev within 60 s (fio: $(fio_writes) writes; blocked tasks in the kernel log): $(tail -n 5 fio.log; cat durable.out durable.err)"
	fi
	sleep "$(awk -v s="$RANDOM" 'BEGIN { printf "%.2f", 0.2 + (s % 131) / 100 }')"

	# An I/O error before the unmap ends a load early: that is a failure.
	kill -0 "$fio_pid" 2>/dev/null || fail "round $r: fio stopped before the forced unmap: $(cat fio.log)"
	kill -0 "$durable_pid" 2>/dev/null || fail "round $r: lofi_durable stopped before the forced unmap: $(cat durable.out durable.err)"
	touch marker
	echo "round $r: forced unmap of $dev under load"
	unmap_status=0
	timeout -k 5 60 "$map" unmap "$n" force || unmap_status=$?
	if [ "$unmap_status" -eq 124 ] || [ "$unmap_status" -eq 137 ]; then
		# The kernel log gets the blocked tasks' stacks (which also fails
		# the run's kernel log check).
		echo 1 >/proc/sys/kernel/sysrq
		echo w >/proc/sysrq-trigger
		figure forced-unmap-rounds rounds="$r" hung="$((hung + 1))"
		fail "round $r: the forced unmap of $dev did not return within 60 s (blocked tasks in the kernel log)"
	fi
	[ "$unmap_status" -eq 0 ] || fail "round $r: forced unmap of $dev failed (status $unmap_status)"

	reap fio "$fio_pid"
	fio_status=$REAPED
	fio_pid=
	reap lofi_durable "$durable_pid"
	durable_status=$REAPED
	durable_pid=
	round_ok=1
	if [ "$fio_status" = 124 ] || [ "$durable_status" = 124 ]; then
		hung=$((hung + 1))
		tail -n 60 fio.log; cat durable.out durable.err
		figure forced-unmap-rounds rounds="$r" hung="$hung"
		fail "round $r: a load hung after the forced unmap (fio $fio_status, lofi_durable $durable_status)"
	fi
	if grep -qiE 'verify failed|bad magic|bad header' fio.log; then
		mismatches=$((mismatches + 1))
		echo "round $r: fio found a verify mismatch:"
		tail -n 60 fio.log
		round_ok=0
	fi
	if [ "$fio_status" -eq 0 ] || ! grep -qE 'Input/output error|err= *5[,/]' fio.log; then
		echo "round $r: fio did not stop with EIO (status $fio_status):"
		tail -n 60 fio.log
		round_ok=0
	fi
	grep -v '^started' durable.out
	lost_now=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' durable.out)
	acked_now=$(sed -n 's/^writes=\([0-9]*\).*/\1/p' durable.out)
	lost=$((lost + ${lost_now:-0}))
	acked=$((acked + ${acked_now:-0}))
	if [ "$durable_status" -ne 0 ]; then
		echo "round $r: lofi_durable failed (status $durable_status):"
		cat durable.err
		round_ok=0
	fi

	# The last close (the loads have exited) removes the disk and frees N.
	wait_for 10 test ! -e "/sys/block/lofi$n" || fail "round $r: lofi$n still exists after the loads exited"
	[ -z "$("$map" list)" ] || fail "round $r: mappings left: $("$map" list)"
	[ "$round_ok" = 1 ] || failures=$((failures + 1))
	echo "round $r ($mapping): ok=$round_ok, fio status $fio_status, $(grep -v '^started' durable.out)"
done

figure forced-unmap-rounds rounds="$rounds" hung="$hung" verify-mismatches="$mismatches" \
	acked-writes="$acked" acked-writes-lost="$lost" failed-rounds="$failures"
[ "$failures" -eq 0 ] || fail "$failures of $rounds rounds failed"
unload_lofi
echo "ok: $rounds forced unmaps under fio and lofi_durable: no hang, EIO only after the unmap, nothing lost"
