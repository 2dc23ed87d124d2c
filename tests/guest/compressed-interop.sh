#!/usr/bin/env bash
# The illumos compressed format, read and written by an independent
# implementation (tests/compressed/illumos_format.py, which shares no code
# with lofiadm or the driver):
#   - images it encodes (gzip, gzip-6, gzip-9, lzma with an end-of-payload
#     marker; segment sizes 512, 4 KiB and 128 KiB; both stored and
#     compressed segments) map and read back byte for byte, and lofiadm -U
#     restores them;
#   - what lofiadm -C writes (the algorithms Python's standard library has)
#     decodes with its decoder to the original, and its checker finds the
#     header and index as illumos lays them out.
# The independent implementation's images are encoded on the host before
# the boot (tests/compressed/prepare.sh: in the TCG guest, encoding is
# twenty times slower); its decoder and checker run here.
# host-prepare: tests/compressed/prepare.sh interop
# time-limit: 900
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

codec=$LOFI_ROOT/tests/compressed/illumos_format.py
[ -x "$codec" ] || fail "$codec missing"
trap lofiadm_cleanup EXIT

# Not a multiple of 128 KiB: the last segment is short.
need_prepared orig.img
cp "$LOFI_PREP/orig.img" orig.img

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

images=0
for alg in gzip gzip-6 gzip-9 lzma; do
	for seg in 512 4096 131072; do
		need_prepared "$alg-$seg.img"
		cp "$LOFI_PREP/$alg-$seg.img" c.img
		ok -a "$PWD/c.img"
		dev=$OUT
		cmp "$dev" orig.img || fail "$alg/$seg: the device differs from the original"
		ok -d "$dev"
		ok -U c.img
		cmp c.img orig.img || fail "$alg/$seg: lofiadm -U of its image differs from the original"
		images=$((images + 1))
	done
done

for alg in gzip gzip-6 gzip-9 lzma; do
	for seg in 512 131072; do
		cp orig.img c.img
		ok -C "$alg" -s "$seg" c.img
		info=$(python3 "$codec" info c.img) || fail "$alg/$seg: the checker refuses lofiadm's image"
		grep -qx "algorithm=$alg" <<<"$info" || fail "$alg/$seg: $info"
		grep -qx "segment_size=$seg" <<<"$info" || fail "$alg/$seg: $info"
		python3 "$codec" decode c.img back.img || fail "$alg/$seg: its decoder refuses lofiadm's image"
		cmp back.img orig.img || fail "$alg/$seg: its decoder gives other bytes"
		images=$((images + 1))
	done
done
figure compressed-interop images=$images
unload_lofi
