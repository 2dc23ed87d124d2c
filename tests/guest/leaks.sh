#!/usr/bin/env bash
# No leaks: run last in a VM run, after the other tests have loaded,
# used and unloaded lofi many times. lofi loads, maps, does I/O, unmaps
# (plainly and forced) and unloads once more; then kmemleak scans (the
# test kernel has DEBUG_KMEMLEAK, scanned only on demand) and must report
# no unreferenced object at all: lofi's allocations would show lofi
# functions, or, once the module is gone, raw module addresses, in their
# backtraces, and the VM runner fails a run whose kernel log has a
# kmemleak report anyway. Figure: leaks (all, and lofi's).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
kmemleak=/sys/kernel/debug/kmemleak

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

mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug ||
	fail "cannot mount debugfs"
[ -f "$kmemleak" ] || fail "$kmemleak missing: the test kernel lacks DEBUG_KMEMLEAK"
grep -q . "$kmemleak" 2>/dev/null && echo "(kmemleak had reports before this test)"

# One more life of the module, with each kind of teardown.
load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
truncate -s 4M a.img b.img c.img
for img in a b c; do
	dev=$("$map" map "$PWD/$img.img") || fail "map $img.img failed"
	wait_for 5 test -b "$dev" || fail "$dev is not a block device"
	dd if=/dev/urandom of="$dev" conv=nocreat bs=64k count=16 oflag=direct status=none || fail "writing $dev failed"
	dd if="$dev" of=/dev/null bs=64k count=16 iflag=direct status=none || fail "reading $dev failed"
done
"$map" unmap "$PWD/a.img" || fail "unmap a.img failed"
exec 7<"/dev/lofi2"
"$map" unmap 2 force || fail "forced unmap of /dev/lofi2 failed"
exec 7<&-
"$map" unmap 3 cleanup || fail "unmap 3 (cleanup) failed"
wait_for 10 test ! -e /sys/block/lofi2 || fail "lofi2 still exists after its last close"
wait_for 10 test ! -e /sys/block/lofi3 || fail "lofi3 still exists"
unload_lofi

# kmemleak reports an object only once it is older than its minimum age
# (5 s) and unreferenced in two scans.
sleep 6
echo scan >"$kmemleak" || fail "kmemleak scan failed"
sleep 1
echo scan >"$kmemleak" || fail "kmemleak scan failed"
cat "$kmemleak" >report
total=$(grep -c '^unreferenced object' report || true)
# lofi's: a backtrace naming lofi, or an address of an unloaded module
# (kernel text resolves to symbols; lofi's no longer can).
ours=$(awk '/^unreferenced object/ { if (obj && mine) n++; obj = 1; mine = 0 }
	/lofi|^ *(\[<[0-9a-f]+>\] )?0x[0-9a-f]+$/ { mine = 1 }
	END { if (obj && mine) n++; print n + 0 }' report)
figure leaks kmemleak-objects="$total" lofi-objects="$ours"
if [ "$total" -gt 0 ]; then
	head -n 60 report
	fail "kmemleak reports $total unreferenced object(s), $ours of them lofi's"
fi
echo "ok: lofi loaded, used and unloaded again; kmemleak reports nothing"
