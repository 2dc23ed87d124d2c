#!/usr/bin/env bash
# Corrupt compressed images (tests/compressed/illumos_format.py corrupt:
# random bytes in the header, the index or a compressed segment, or the
# file cut short), each mapped and read whole: the map either succeeds or
# fails with EINVAL, a read either returns the data or fails with EIO, and
# nothing crashes, hangs or warns (the runner scans the kernel log). The
# counts show that each kind of damage was met: refused maps for headers
# and indexes, failed reads for segments.
# The damaged images are made on the host before the boot
# (tests/compressed/prepare.sh; 5 seeds per kind of damage, 60 under
# make stress).
# host-prepare: tests/compressed/prepare.sh fuzz
# time-limit: 900
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
trap '"$map" unmap-all force >/dev/null 2>&1 || true' EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

seeds=$(stress_or 5 60)
refused=0 mapped=0 read_ok=0 read_eio=0
for base in gzip lzma; do
	for part in header index segment truncate; do
		for ((seed = 1; seed <= seeds; seed++)); do
			need_prepared "$base-$part-$seed.img"
			cp "$LOFI_PREP/$base-$part-$seed.img" bad.img
			if ! dev=$("$map" map "$PWD/bad.img" 2>err); then
				grep -q EINVAL err || fail "$base/$part/$seed: map failed otherwise: $(cat err)"
				refused=$((refused + 1))
				continue
			fi
			mapped=$((mapped + 1))
			wait_for 5 test -b "$dev" || fail "$base/$part/$seed: no $dev"
			if dd if="$dev" of=/dev/null bs=64k iflag=direct 2>err; then
				read_ok=$((read_ok + 1))
			else
				grep -q "Input/output error" err || fail "$base/$part/$seed: read failed otherwise: $(cat err)"
				read_eio=$((read_eio + 1))
			fi
			"$map" unmap "$dev" >/dev/null || fail "$base/$part/$seed: unmap failed"
		done
	done
done
figure compressed-fuzz images=$((refused + mapped)) refused=$refused mapped=$mapped read_ok=$read_ok read_eio=$read_eio
[ "$refused" -gt 0 ] || fail "no corrupt header or index was refused"
[ "$read_eio" -gt 0 ] || fail "no corrupt segment failed a read"
unload_lofi
