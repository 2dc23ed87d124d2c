#!/usr/bin/env bash
# Host-side preparation of the VM tests' compressed images: encoding with
# illumos_format.py is pure computation, about twenty times slower in the
# TCG guest than here (an lzma encode of 3 MiB takes 25 s there), so the
# VM runner calls this before the boot (the tests' "# host-prepare:" line)
# and the guest tests only map, read and compare what it wrote.
#
# usage: tests/compressed/prepare.sh interop|fuzz DIR
#   interop  DIR/orig.img (3 MiB + 7 sectors: the last segment is short)
#            and DIR/ALG-SEG.img for gzip, gzip-6, gzip-9, lzma and
#            segment sizes 512, 4096 and 131072, each checked with info
#   fuzz     DIR/{gzip,lzma}-PART-SEED.img: the 1 MiB image encoded with
#            4 KiB segments, then damaged in PART (header, index, segment,
#            truncate) with SEED 1..5 (1..60 with LOFI_STRESS=1)
set -euo pipefail

codec=$(cd "$(dirname "$0")" && pwd)/illumos_format.py
[ $# -eq 2 ] || {
	echo "usage: $0 interop|fuzz DIR" >&2
	exit 64
}
kind=$1
dir=$2
mkdir -p "$dir"

case $kind in
interop)
	python3 "$codec" mkimage --size $((3 * 1024 * 1024 + 7 * 512)) --seed 7 "$dir/orig.img"
	for alg in gzip gzip-6 gzip-9 lzma; do
		for seg in 512 4096 131072; do
			img=$dir/$alg-$seg.img
			python3 "$codec" encode --algorithm "$alg" --segment-size "$seg" "$dir/orig.img" "$img"
			info=$(python3 "$codec" info "$img")
			# Above 2048 bytes a segment of this data compresses: the
			# image must hold compressed segments, not only stored ones.
			if [ "$seg" -gt 2048 ] && ! grep -q '^compressed_segments=[1-9]' <<<"$info"; then
				echo "$0: $alg/$seg: no compressed segment: $info" >&2
				exit 1
			fi
		done
	done
	;;
fuzz)
	seeds=5
	[ "${LOFI_STRESS:-0}" = 1 ] && seeds=60
	python3 "$codec" mkimage --size $((1024 * 1024)) --seed 3 "$dir/orig.img"
	for base in gzip lzma; do
		python3 "$codec" encode --algorithm "$base" --segment-size 4096 "$dir/orig.img" "$dir/$base.img"
		for part in header index segment truncate; do
			for ((seed = 1; seed <= seeds; seed++)); do
				python3 "$codec" corrupt --seed "$seed" --part "$part" "$dir/$base.img" "$dir/$base-$part-$seed.img" >/dev/null
			done
		done
	done
	;;
*)
	echo "$0: unknown kind $kind (interop or fuzz)" >&2
	exit 64
	;;
esac
