#!/usr/bin/env bash
# The sysfs attributes of a mapping, /sys/block/lofiN/lofi/ (documented in
# Documentation/ABI/testing/sysfs-block-lofi): each file is read-only
# (0444, writes refused) and one line that says what the queries say:
# backing_file, offset, sizelimit, readonly, labeled, dio, sector_size,
# state and algorithm (empty: no compressed image), for a plain mapping, a read-only slice in 4096-byte sectors and a
# mapping asked for direct I/O; sizelimit follows a resize; state is
# detach-at-close after an unmap with cleanup of an open device and gone
# after a forced unmap of one, and the directory goes with the disk at
# the last close.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
trap lofiadm_cleanup EXIT

NAMES="backing_file offset sizelimit readonly labeled dio sector_size state algorithm"

# expect_attrs N VALUE...: the attributes of lofiN, in the order of NAMES.
expect_attrs() {
	local n=$1 name
	shift
	for name in $NAMES; do
		expect_eq "/sys/block/lofi$n/lofi/$name" "$(cat "/sys/block/lofi$n/lofi/$name")" "$1"
		shift
	done
}

# json_of DEVICE KEY: a property of one mapping in lofiadm --json.
json_of() {
	"$LOFIADM" --json | python3 -c '
import json, sys
dev, key = sys.argv[1], sys.argv[2]
for m in json.load(sys.stdin):
    if m["device"] == dev:
        v = m[key]
        print(int(v) if isinstance(v, bool) else v)' "$1" "$2"
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

echo "=== a plain mapping"
truncate -s 4M plain.img
ok -a plain.img
dev=$OUT
n=$(minor_of "$dev")
dir=/sys/block/lofi$n/lofi
expect_eq "the files of $dir" "$(cd "$dir" && ls | sort | tr '\n' ' ')" \
	"$(echo "$NAMES" | tr ' ' '\n' | sort | tr '\n' ' ')"
for name in $NAMES; do
	expect_eq "mode of $dir/$name" "$(stat -c %a "$dir/$name")" 444
	if (echo 1 >"$dir/$name") 2>/dev/null; then
		fail "writing $dir/$name succeeded"
	fi
done
expect_attrs "$n" "$PWD/plain.img" 0 0 0 0 0 512 mapped ""
ok --sizelimit 1M --resize "$dev"
expect_eq "$dir/sizelimit after a resize" "$(cat "$dir/sizelimit")" $((1 << 20))
ok -d "$dev"
wait_for 10 test ! -e "$dir" || fail "$dir still exists after the unmap"

echo "=== a read-only slice in 4096-byte sectors"
truncate -s 8M slice.img
ok -r -o 1M --sizelimit 4M -b 4096 -a slice.img
dev=$OUT
n=$(minor_of "$dev")
expect_attrs "$n" "$PWD/slice.img" $((1 << 20)) $((4 << 20)) 1 0 0 4096 mapped ""
ok -d "$dev"

echo "=== a mapping asked for direct I/O"
truncate -s 4M dio.img
run --direct-io -a dio.img
[ "$RC" -eq 0 ] || fail "lofiadm --direct-io -a dio.img: $ERR"
dev=$OUT
n=$(minor_of "$dev")
dio=$(json_of "$dev" direct_io)
bs=$(json_of "$dev" block_size)
echo "direct I/O: $dio, block size $bs"
expect_attrs "$n" "$PWD/dio.img" 0 0 0 0 "$dio" "$bs" mapped ""
ok -d "$dev"

echo "=== detach at last close, forced unmap"
for how in cleanup force; do
	dev=$("$map" map "$PWD/plain.img") || fail "map plain.img failed"
	n=$(minor_of "$dev")
	dir=/sys/block/lofi$n/lofi
	wait_for 5 test -b "$dev" || fail "$dev did not appear"
	exec 7<"$dev"
	"$map" unmap "$dev" "$how" || fail "unmap $dev $how failed"
	want=detach-at-close
	[ "$how" = force ] && want=gone
	expect_eq "$dir/state after an unmap ($how) of the open $dev" "$(cat "$dir/state")" "$want"
	expect_eq "$dir/backing_file after an unmap ($how)" "$(cat "$dir/backing_file")" "$PWD/plain.img"
	exec 7<&-
	wait_for 10 test ! -e "$dir" || fail "$dir still exists after the last close ($how)"
done
unload_lofi
echo "ok: every attribute as the queries say, read-only, in every state"
