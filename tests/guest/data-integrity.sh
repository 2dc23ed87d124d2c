#!/usr/bin/env bash
# What is written through /dev/lofi/N is what reads back and what lands in
# the backing file, byte for byte (tests/guest/prog/lofi_data_test.c), on
# buffered mappings and on mappings with direct I/O (LOFI_FLAG_DIRECT_IO,
# which the scratch file system must grant):
#   - random-offset, random-size (512 B .. 1 MiB) writes on a 64 MiB
#     device, buffered and O_DIRECT, each read back, then fsync, the page
#     cache dropped, every sector checked and the device compared with its
#     backing file;
#   - the same random I/O on an 8 MiB device whose backing file is on
#     the 9p share with the host (a network file system);
#   - a per-sector pattern over the whole of 512-byte, 1 MiB and 64 MiB
#     devices (buffered and O_DIRECT opens);
#   - a 5 GiB sparse device: its size, a sampled pattern (QEMU TCG is ~50x
#     slower than native, so the ends, the 2 GiB and 4 GiB boundaries and
#     scattered chunks, with untouched gaps checked to stay zero) and random
#     writes above 4 GiB: 64-bit offsets end to end.
# After each unmap the backing file is checked again on its own: with cmp
# against a copy read through the device, and for the pattern against the
# pattern itself.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
data=$prog_dir/lofi_data_test
need_progs "$map" "$data"

cleanup() {
	set +e
	if lofi_loaded; then
		"$map" unmap-all force >/dev/null 2>&1
		rmmod lofi 2>/dev/null
	fi
}
trap cleanup EXIT

# map_file FILE [direct]: map it (with direct I/O, which must be granted,
# when asked), check the node and the size, print the device.
map_file() {
	local dev
	dev=$("$map" map "$1" ${2:+direct} 2>map.err) || fail "map $1 ${2:-} failed: $(cat map.err)"
	! grep -q "direct I/O refused" map.err || fail "map $1 direct: direct I/O refused"
	wait_for 5 test -b "$dev" || fail "$dev is not a block device"
	expect_eq "size of $dev" "$(blockdev --getsize64 "$dev")" "$(stat -c %s "$1")"
	echo "$dev"
}

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

# 1. Random I/O on a 64 MiB device, mapped buffered and with direct I/O.
seed=10
for mapping in buffered direct; do
	echo "=== random I/O, 64 MiB, $mapping mapping"
	seed=$((seed + 2))
	truncate -s 64M random.img
	dev=$(map_file "$PWD/random.img" "${mapping#buffered}")
	"$data" random --buffered --seed "$seed" --iterations 200 "$dev" "$PWD/random.img" || fail "buffered random I/O on $dev ($mapping mapping)"
	"$data" random --direct --seed $((seed + 1)) --iterations 200 "$dev" "$PWD/random.img" || fail "O_DIRECT random I/O on $dev ($mapping mapping)"
	dd if="$dev" of=random.copy bs=1M iflag=direct status=none || fail "reading $dev failed"
	"$map" unmap "$dev" || fail "unmap $dev failed"
	expect_eq "size of the backing file after the unmap ($mapping mapping)" "$(stat -c %s random.img)" 67108864
	cmp random.copy random.img || fail "the backing file differs from what the device read before the unmap ($mapping mapping)"
	rm -f random.copy random.img
done

# 1b. A backing file on the 9p share with the host ($LOFI_RESULTS): a
# network file system (netfs), which serves lofi's I/O unbuffered and does
# not move the caller's iterator as a local file system does.
echo "=== random I/O, 8 MiB, backing file on 9p"
nine=$LOFI_RESULTS/data-integrity-9p.img
rm -f "$nine"
truncate -s 8M "$nine"
dev=$(map_file "$nine")
"$data" random --buffered --seed 31 --iterations 40 "$dev" "$nine" || fail "buffered random I/O on $dev (9p backing file)"
"$data" random --direct --seed 32 --iterations 40 "$dev" "$nine" || fail "O_DIRECT random I/O on $dev (9p backing file)"
dd if="$dev" of=random.copy bs=1M iflag=direct status=none || fail "reading $dev failed"
"$map" unmap "$dev" || fail "unmap $dev failed"
cmp random.copy "$nine" || fail "the 9p backing file differs from what the device read before the unmap"
rm -f random.copy "$nine"

# 2. The whole-device pattern, in both I/O modes, on both kinds of mapping
# (size:open mode:mapping).
seed=100
for spec in 512:buffered:buffered 512:direct:buffered 1M:buffered:buffered 1M:direct:buffered \
	64M:buffered:buffered 512:direct:direct 1M:buffered:direct 1M:direct:direct; do
	size=${spec%%:*}
	mode=${spec#*:}
	mapping=${mode#*:}
	mode=${mode%%:*}
	seed=$((seed + 1))
	echo "=== pattern, $size, $mode, $mapping mapping"
	truncate -s "$size" pattern.img
	bytes=$(stat -c %s pattern.img)
	dev=$(map_file "$PWD/pattern.img" "${mapping#buffered}")
	"$data" pattern "--$mode" --seed "$seed" --fresh "$dev" "$PWD/pattern.img" || fail "pattern on a $size device ($mode)"
	dd if="$dev" of=pattern.copy bs=1M iflag=direct status=none || fail "reading $dev failed"
	"$map" unmap "$dev" || fail "unmap $dev failed"
	expect_eq "size of the $size backing file after the unmap" "$(stat -c %s pattern.img)" "$bytes"
	cmp pattern.copy pattern.img || fail "$size: the backing file differs from what the device read"
	"$data" verify-pattern --seed "$seed" --fresh "$PWD/pattern.img" || fail "$size: the backing file lost the pattern"
	rm -f pattern.copy pattern.img
done

# 3. A 5 GiB sparse device.
echo "=== 5 GiB sparse device"
truncate -s 5G big.img
dev=$(map_file "$PWD/big.img")
expect_eq "sectors of $dev" "$(blockdev --getsz "$dev")" 10485760
"$data" pattern --direct --seed 500 --fresh "$dev" "$PWD/big.img" || fail "sampled pattern on the 5 GiB device"
"$map" unmap "$dev" || fail "unmap $dev failed"
expect_eq "size of the 5 GiB backing file after the unmap" "$(stat -c %s big.img)" 5368709120
"$data" verify-pattern --seed 500 --fresh "$PWD/big.img" || fail "the 5 GiB backing file lost the pattern"
dev=$(map_file "$PWD/big.img")
"$data" random --direct --seed 501 --iterations 40 "$dev" "$PWD/big.img" || fail "random I/O above 4 GiB"
"$map" unmap "$dev" || fail "unmap $dev failed"
rm -f big.img

unload_lofi
echo "ok: random and pattern I/O verified through the devices and in the backing files"
