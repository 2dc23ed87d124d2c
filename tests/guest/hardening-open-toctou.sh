#!/usr/bin/env bash
# The backing path is resolved once, and what it resolves to is checked
# before it is opened.
#  A. Mapping /dev/lofi/M (a lofi device) fails with EINVAL without
#     opening M: no IN_OPEN nor IN_CLOSE_WRITE on /dev/lofi/M while maps
#     of it are refused; and M's open count is never raised by them: while
#     another process tries to map /dev/lofi/M in a loop, a plain unmap of
#     M (no retry) at the moment M is opened never fails with EBUSY.
#     Control: the same unmaps at opens of M by a shell do fail with EBUSY.
#  B. A path that flips between a regular image, a FIFO and a character
#     device (a symlink swapped by renameat2(RENAME_EXCHANGE) in a tight
#     loop, on a tmpfs) is mapped
#     again and again: every map maps the image (its size and first
#     sector) or fails with EINVAL; none hangs; and the FIFO and the
#     character device are never opened (inotify IN_OPEN).
# udev's event rules are paused meanwhile (its probes open lofi devices).
# Figure: unmaps at opens by the refused maps, EBUSY among them (must be 0);
# maps of the flipping path, FIFO and character device opens (must be 0).
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/hardening-lib.sh
. "$LOFI_ROOT/tests/guest/hardening-lib.sh"

unmap_secs=$(stress_or 5 60)
flip_secs=$(stress_or 10 90)

bg_pids=
unmapper_pid=
cleanup() {
	set +e
	for p in $bg_pids; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	lofi_teardown
	udev_resume
	[ -n "${flipfs:-}" ] && umount "$flipfs"
	return 0
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
udev_pause

img=$PWD/image.img
truncate -s 8M "$img"

dev=$("$map" map "$img") || fail "mapping $img failed"
m=$(minor_of "$dev")
wait_for 5 test -b "$dev" || fail "$dev did not appear"

echo "=== A1: maps of $dev refused, and whether they open it for writing"
out=$("$hard" map-loop "$dev" 3 "watch=$dev") || fail "map-loop $dev failed: $out"
echo "$out"
[ "$(result <(echo "$out") mapped)" = 0 ] || bad "mapping the lofi device $dev succeeded"
[ "$(result <(echo "$out") other)" = 0 ] || bad "mapping the lofi device $dev: want EINVAL, got $(result <(echo "$out") first_other)"
[ "$(result <(echo "$out") einval)" -gt 0 ] || bad "no map of $dev was refused with EINVAL"
cw=$(result <(echo "$out") close-write1)
opens=$(result <(echo "$out") opens1)
[ "$cw" = 0 ] || bad "the $(result <(echo "$out") attempts) refused maps of $dev opened it for writing $cw times (IN_CLOSE_WRITE)"
[ "$opens" = 0 ] || bad "the $(result <(echo "$out") attempts) refused maps of $dev opened it $opens times (IN_OPEN)"

# unmap_on_open NAME kill|wait OPENER...: run OPENER (a command opening
# /dev/lofi/M in a loop; killed at the end, or waited for) pinned to CPU 1 and, at real-time priority on the same CPU, a
# process that tries a plain unmap of M the moment M is opened (inotify
# IN_OPEN wakes it, preempting the opener inside its open(2) or ioctl):
# an unmap then fails with EBUSY exactly if the opener's call has M open.
unmap_on_open() {
	local name=$1 end=$2 opener_pid
	shift 2
	chrt -f 50 taskset -c 1 "$hard" unmap-on-open "$dev" "$img" "$unmap_secs" >"$name.out" 2>&1 &
	unmapper_pid=$!
	bg_pids="$unmapper_pid"
	wait_for 10 grep -q '^watching$' "$name.out" || fail "unmap-on-open did not start: $(cat "$name.out")"
	taskset -c 1 "$@" >"$name.opener.out" 2>&1 &
	opener_pid=$!
	bg_pids="$unmapper_pid $opener_pid"
	wait "$unmapper_pid" || fail "unmap-on-open failed: $(cat "$name.out")"
	if [ "$end" = kill ]; then
		kill "$opener_pid" 2>/dev/null || true
		wait "$opener_pid" 2>/dev/null || true
	else
		wait "$opener_pid" || fail "$* failed: $(cat "$name.opener.out")"
	fi
	bg_pids=
	cat "$name.out" "$name.opener.out"
}

echo "=== A2: control: the same for opens of $dev by a shell (: <$dev in a loop) for ${unmap_secs} s"
# shellcheck disable=SC2016 # expanded by the inner bash
unmap_on_open control kill bash -c 'while :; do : <"$1"; done 2>/dev/null' opener "$dev"
ctl_ebusy=$(result control.out ebusy)
echo "control: $ctl_ebusy of $(result control.out attempts) unmaps right after an open of $dev failed with EBUSY"
[ "$ctl_ebusy" -gt 0 ] || fail "no unmap right after an open of $dev by a shell failed with EBUSY ($(result control.out attempts) tries): the method of A3 does not work here"

echo "=== A3: plain unmaps of $dev whenever it is opened, while another process maps $dev, ${unmap_secs} s"
unmap_on_open refused wait "$hard" map-loop "$dev" $((unmap_secs + 1))
unmaps=$(result refused.out attempts)
a_ebusy=$(result refused.out ebusy)
[ "$(result refused.opener.out mapped)" = 0 ] || bad "mapping the lofi device $dev succeeded"
[ "$(result refused.opener.out other)" = 0 ] || bad "mapping the lofi device $dev: want EINVAL (or ENOENT/ENXIO while it is unmapped), got $(result refused.opener.out first_other)"
echo "$a_ebusy of $unmaps plain unmaps of $dev right after it was opened failed with EBUSY while another process tried to map it"
[ "$a_ebusy" = 0 ] || bad "$a_ebusy of $unmaps plain unmaps of $dev failed with EBUSY while another process tried to map $dev: the refused map had $dev open"
"$map" unmap "$m" || fail "unmap $m failed"

echo "=== B: mapping a path that flips between an image, a FIFO and a character device, ${flip_secs} s"
# On a tmpfs of its own: fast, and not nodev (the character device opens).
flipfs=$PWD/flipfs
mkdir -p "$flipfs"
mount -t tmpfs -o size=16M lofi-flip "$flipfs" || fail "mounting a tmpfs failed"
flip_img=$flipfs/image.img
truncate -s 8M "$flip_img"
printf 'LOFI-TOCTOU-IMAGE' | dd of="$flip_img" conv=notrunc status=none
mkfifo "$flipfs/fifo"
mknod "$flipfs/chr" c 1 3
"$hard" flip "$flipfs/link" $((flip_secs + 5)) image.img fifo chr >flip.out 2>&1 &
flip_pid=$!
bg_pids="$flip_pid"
wait_for 5 test -L "$flipfs/link.flip2" || fail "the flipper did not start: $(cat flip.out)"
status=0
timeout -k 5 $((flip_secs + 60)) "$hard" map-loop "$flipfs/link" "$flip_secs" "image=$flip_img" "watch=$flipfs/fifo" "watch=$flipfs/chr" >race.out 2>&1 || status=$?
kill "$flip_pid" 2>/dev/null
wait "$flip_pid" 2>/dev/null || true
bg_pids=
cat race.out flip.out
case $status in
0) ;;
124 | 137) fail "mapping the flipping path hung (map-loop killed after $((flip_secs + 60)) s)" ;;
142) fail "a map of the flipping path hung for 10 s (SIGALRM)" ;;
*) fail "map-loop of the flipping path failed (status $status)" ;;
esac
attempts=$(result race.out attempts)
mapped=$(result race.out mapped)
fifo_opens=$(result race.out opens1)
chr_opens=$(result race.out opens2)
[ "$(result race.out wrong)" = 0 ] || bad "$(result race.out wrong) maps of the flipping path mapped something that is not the image"
[ "$(result race.out other)" = 0 ] || bad "maps of the flipping path: want success or EINVAL, got $(result race.out first_other) ($(result race.out other) times)"
[ "$(result race.out enoent)$(result race.out enxio)" = 00 ] || bad "maps of the flipping path failed with ENOENT or ENXIO"
[ "$mapped" -gt 0 ] || bad "no map of the flipping path mapped the image in $attempts attempts"
[ "$(result race.out einval)" -gt 0 ] || bad "no map of the flipping path was refused in $attempts attempts"
[ "$fifo_opens" = 0 ] || bad "mapping the flipping path opened the FIFO $fifo_opens times: the path was resolved again after it was checked"
[ "$chr_opens" = 0 ] || bad "mapping the flipping path opened the character device $chr_opens times: the path was resolved again after it was checked"

figure hardening-open-toctou unmaps="$unmaps" ebusy="$a_ebusy" flip-maps="$attempts" flip-mapped="$mapped" fifo-opens="$fifo_opens" chr-opens="$chr_opens"
expect_eq "mappings at the end" "$("$map" list)" ""
umount "$flipfs" && flipfs=
[ "$failures" -eq 0 ] || fail "$failures checks failed (see the FAIL lines above)"
unload_lofi
echo "ok: lofi devices refused without being opened, the flipping path never opened as a FIFO or device"
