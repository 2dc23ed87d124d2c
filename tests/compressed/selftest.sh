#!/bin/bash
# Self-test of illumos_format.py: round trips, info counts, corruption fuzzing
# and a few hand-made malformed images.  Host-only, no kernel needed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tool="$here/illumos_format.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results="$tmp/results"
: >"$results"

# One line per check, appended (atomically) so background jobs can report too.
ok() { echo PASS >>"$results"; }
bad() { echo "FAIL: $*" | tee -a "$results"; }

# info_val KEY: value of KEY in the last "info" output ($info)
info_val() { sed -n "s/^$1=//p" <<<"$info"; }

# Round trips: every algorithm, three segment sizes, one input an exact
# multiple of the segment size and one not (every valid input is a multiple
# of 512, so for 512 both are).
roundtrip() {
	local seg=$1 base size in alg img info st co
	case $seg in
	512) base=$((96 * 1024)) ;;
	4096) base=$((640 * 1024)) ;;
	*) base=$((1024 * 1024)) ;;
	esac
	for size in "$base" $((base + 1536)); do
		in="$tmp/in-$seg-$size"
		"$tool" mkimage --size "$size" --seed "$size" "$in"
		for alg in gzip gzip-6 gzip-9 lzma; do
			img="$tmp/img-$alg-$seg-$size"
			"$tool" encode --algorithm "$alg" --segment-size "$seg" "$in" "$img"
			if "$tool" decode "$img" "$img.out" && cmp -s "$in" "$img.out"; then
				ok
			else
				bad "round trip $alg seg=$seg size=$size"
			fi
			info=$("$tool" info "$img")
			st=$(info_val stored_segments)
			co=$(info_val compressed_segments)
			if [ "$seg" -le 2048 ]; then
				# segments this small are always stored
				if [ "$co" -eq 0 ] && [ "$st" -gt 0 ]; then ok; else bad "$alg seg=$seg: stored=$st compressed=$co"; fi
			else
				if [ "$co" -gt 0 ] && [ "$st" -gt 0 ]; then ok; else bad "$alg seg=$seg: stored=$st compressed=$co"; fi
			fi
			if [ $((size % 512)) -eq 0 ] && [ "$(info_val uncompressed_size)" -eq "$size" ]; then ok; else bad "$alg seg=$seg: uncompressed_size"; fi
		done
	done
}
# A job that dies (set -e) is reported, not silently short of checks.
wait_all() {
	local pid
	for pid in "$@"; do
		wait "$pid" || bad "background job $pid exited early"
	done
}
pids=()
for seg in 512 4096 131072; do
	roundtrip "$seg" &
	pids+=($!)
done
wait_all "${pids[@]}"

# Default settings: gzip, 128 KiB segments, both segment kinds.
in="$tmp/in-131072-$((1024 * 1024))"
"$tool" encode "$in" "$tmp/default"
info=$("$tool" info "$tmp/default")
if [ "$(info_val algorithm)" = gzip ] &&
	[ "$(info_val segment_size)" -eq 131072 ] &&
	[ "$(info_val stored_segments)" -gt 0 ] &&
	[ "$(info_val compressed_segments)" -gt 0 ]; then
	ok
else
	bad "default encode settings"
fi

# Corruption: every damaged image must fail decode with exit 2 or decode to
# different bytes, never crash.
# fuzz_part PART: one check per seed (runs in background).
fuzz_part() {
	local part=$1 seed alg src orig dmg rc
	local algs=(gzip gzip-9 lzma gzip-6)
	for seed in $(seq 1 20); do
		alg=${algs[$((seed % 4))]}
		src="$tmp/img-$alg-4096-$((640 * 1024 + 1536))"
		orig="$tmp/in-4096-$((640 * 1024 + 1536))"
		dmg="$tmp/dmg-$part-$seed"
		if ! "$tool" corrupt --seed "$seed" --part "$part" "$src" "$dmg" >"$dmg.desc" 2>"$dmg.err"; then
			bad "corrupt $part seed=$seed: $(cat "$dmg.err")"
			continue
		fi
		rc=0
		"$tool" decode "$dmg" "$dmg.out" 2>"$dmg.err" || rc=$?
		if grep -q Traceback "$dmg.err"; then
			bad "decode traceback: $part seed=$seed"
		elif [ "$rc" -eq 2 ]; then
			ok
		elif [ "$rc" -eq 0 ] && ! cmp -s "$orig" "$dmg.out"; then
			ok
		else
			bad "decode $part seed=$seed rc=$rc ($(cat "$dmg.desc"))"
		fi
		rm -f "$dmg" "$dmg.out"
	done
}
parts=(header index segment truncate)
pids=()
for part in "${parts[@]}"; do
	fuzz_part "$part" &
	pids+=($!)
done
wait_all "${pids[@]}"

# Determinism of corrupt.
src="$tmp/img-lzma-4096-$((640 * 1024))"
if "$tool" corrupt --seed 7 --part segment "$src" "$tmp/d1" >/dev/null &&
	"$tool" corrupt --seed 7 --part segment "$src" "$tmp/d2" >/dev/null &&
	cmp -s "$tmp/d1" "$tmp/d2"; then ok; else bad "corrupt not deterministic"; fi

# expect_rc RC DESCRIPTION COMMAND...
expect_rc() {
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >/dev/null 2>"$tmp/err" || rc=$?
	if [ "$rc" -eq "$want" ] && ! grep -q Traceback "$tmp/err"; then ok; else bad "$what: rc=$rc, want $want"; fi
}

# Hand-made cases.
for name in zstd lz4; do
	cp "$tmp/default" "$tmp/$name"
	printf '%s\0\0\0\0' "$name" | dd of="$tmp/$name" conv=notrunc status=none
	expect_rc 3 "$name unsupported" "$tool" decode "$tmp/$name" "$tmp/$name.out"
	expect_rc 0 "$name info" "$tool" info "$tmp/$name"
done
head -c 10 "$tmp/default" >"$tmp/short"
expect_rc 2 "short file" "$tool" decode "$tmp/short" "$tmp/short.out"
: >"$tmp/empty"
expect_rc 2 "empty file" "$tool" info "$tmp/empty"
expect_rc 1 "empty input to encode" "$tool" encode "$tmp/empty" "$tmp/empty.img"
head -c 1000 "$in" >"$tmp/odd"
expect_rc 1 "input not a multiple of 512" "$tool" encode "$tmp/odd" "$tmp/odd.img"
expect_rc 1 "missing input" "$tool" decode "$tmp/nonexistent" "$tmp/x"
expect_rc 64 "usage error" "$tool" encode --segment-size 1000x "$in" "$tmp/x"
# segment size 3000 (not a power of two)
cp "$tmp/default" "$tmp/seg3000"
printf '\0\0\x0b\xb8' | dd of="$tmp/seg3000" bs=1 seek=36 conv=notrunc status=none
expect_rc 2 "segment size not power of two" "$tool" decode "$tmp/seg3000" "$tmp/x"

passed=$(grep -c '^PASS' "$results" || true)
failed=$(grep -c '^FAIL' "$results" || true)
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
