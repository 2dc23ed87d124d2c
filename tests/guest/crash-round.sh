#!/usr/bin/env bash
# One boot of the crash durability scenario (tests/crash-durability.sh
# boots the guest once per round with the same persistent disk /dev/vda
# and the same shared directory $LOFI_SHARE):
#   first boot  ext4 is made on /dev/vda, a 128 MiB image file on it is
#               mapped with lofi, and ext4 is made on /dev/lofi/1;
#   later boots /dev/vda is mounted (its journal replayed), the image is
#               mapped again, the file system on lofi is mounted (its
#               journal replayed) and unmounted, and `e2fsck -fn` must find
#               it clean; every file the writer of the earlier boots
#               acknowledged must be there with its checksum;
#   then        (unless $LOFI_SHARE/final exists) a writer creates files on
#               the file system on lofi, each written, fsynced (file and
#               directory) and only then recorded in $LOFI_SHARE/acked with
#               its checksum; after a random 5-10 s the guest is hard-reset
#               with sysrq 'b' mid-write, announced in reset-requested so
#               that the VM runner judges the reset as this test's end.
# The image is mapped with buffered I/O after an even number of resets and
# with direct I/O (which ext4 on /dev/vda must grant) after an odd one, so
# that both modes are reset mid-write.
# Figure (last boot): rounds, acknowledged files, files lost (must be 0).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
[ -n "${LOFI_SHARE:-}" ] && [ -d "$LOFI_SHARE" ] ||
	fail "no shared directory: run this test through tests/crash-durability.sh"
disk=/dev/vda
[ -b "$disk" ] || fail "no persistent disk $disk: run this test through tests/crash-durability.sh"

persist=$PWD/persist
mnt=$PWD/mnt
acked=$LOFI_SHARE/acked
state=$LOFI_SHARE/state
mkdir -p "$persist" "$mnt"

round=0
checked=0
lost=0
[ ! -f "$state" ] || read -r round checked lost <"$state"
echo "boot after round $round ($checked acknowledged files checked so far, $lost lost)"

mode=()
[ $((round % 2)) -eq 0 ] || mode=(direct)
# map_image: map the image in this boot's mode; sets dev.
map_image() {
	dev=$("$map" map "$persist/lofi.img" "${mode[@]}" 2>map.err) || fail "map ${mode[*]} failed: $(cat map.err)"
	! grep -q refused map.err || fail "direct I/O refused for an image on ext4: $(cat map.err)"
	wait_for 5 test -b "$dev" || fail "$dev is not a block device"
	echo "mapped $dev with ${mode[*]:-buffered} I/O"
}

if [ "$round" -eq 0 ]; then
	mkfs.ext4 -q -F "$disk" || fail "mkfs.ext4 $disk failed"
	mount "$disk" "$persist" || fail "mount $disk failed"
	truncate -s 128M "$persist/lofi.img"
	load_lofi
	map_image
	mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 $dev failed"
	: >"$acked"
else
	mount "$disk" "$persist" || fail "mount $disk (the persistent disk) failed after the reset"
	load_lofi
	map_image
	mount "$dev" "$mnt" || fail "mounting the file system on lofi failed after the reset"
	umount "$mnt"
	e2fsck -fn "$dev" >fsck.log 2>&1 || {
		cat fsck.log
		fail "e2fsck -fn: the file system on lofi is not clean after the reset of round $round"
	}
	echo "e2fsck -fn $dev: clean"
	mount "$dev" "$mnt" || fail "mounting the file system on lofi failed"
	n=0
	while read -r name sum; do
		n=$((n + 1))
		if [ ! -f "$mnt/$name" ]; then
			echo "LOST: $name (acknowledged) is missing"
			lost=$((lost + 1))
		elif [ "$(sha256sum <"$mnt/$name" | cut -d' ' -f1)" != "$sum" ]; then
			echo "LOST: $name (acknowledged) has other contents"
			lost=$((lost + 1))
		fi
	done <"$acked"
	checked=$n
	echo "$n acknowledged files checked, $lost lost in all"
	umount "$mnt"
fi
echo "$round $checked $lost" >"$state"
sync "$state"

if [ -f "$LOFI_SHARE/final" ] || [ "$lost" -gt 0 ]; then
	"$map" unmap "$dev" || fail "unmap failed"
	umount "$persist"
	unload_lofi
	figure crash-durability rounds="$round" acked-files="$checked" acked-files-lost="$lost"
	[ "$lost" -eq 0 ] || fail "$lost acknowledged file(s) lost over $round hard resets"
	echo "ok: $round hard resets, $checked acknowledged files all intact, file system clean"
	exit 0
fi

# The writer; the round counts once it has started.
round=$((round + 1))
echo "$round $checked $lost" >"$state"
sync "$state"
mount "$dev" "$mnt" || fail "mounting the file system on lofi failed"
(
	i=0
	while :; do
		i=$((i + 1))
		name=r$round-f$i
		head -c $(((RANDOM % 64 + 1) * 1024)) /dev/urandom >data
		sum=$(sha256sum <data | cut -d' ' -f1)
		dd if=data of="$mnt/$name" bs=64k conv=fsync status=none || exit 1
		sync "$mnt" || exit 1
		echo "$name $sum" >>"$acked"
		sync "$acked"
	done
) &
sleep "$((5 + RANDOM % 6))"
echo "$(grep -c "^r$round-" "$acked" || true) files acknowledged in round $round; resetting the guest"
echo crash-round >"$LOFI_RESULTS/reset-requested"
sync "$LOFI_RESULTS/reset-requested"
echo 1 >/proc/sys/kernel/sysrq
echo b >/proc/sysrq-trigger
sleep 30
fail "the guest did not reset"
