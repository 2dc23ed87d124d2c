# shellcheck shell=bash
# What the hardening-*.sh guest tests share, sourced after lib.sh: the test
# programs, and an ext4 file system on a loop device to keep backing files
# on, whose umount tells whether a backing file is still open (EBUSY).

map=${prog_dir:?sourced after lib.sh}/lofi_map
hard=$prog_dir/lofi_hardening
need_progs "$map" "$hard"

# bad MESSAGE: record a failed check and go on; a test ends with
# [ "$failures" -eq 0 ] || fail ...
failures=0
bad() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# settle: let udev finish with the events so far (it opens new disks to
# probe them, which would make a plain unmap fail with EBUSY, or make a
# close not the last one).
udev_paused=0
settle() {
	[ "$udev_paused" = 1 ] && return 0
	udevadm settle -t 10 >/dev/null 2>&1 || true
}

# udev_pause: stop udev from running its event rules (which open new and
# changed disks to probe them), so that nobody but the test opens lofi
# devices; the events queue up until udev_resume, for the EXIT trap.
udev_pause() {
	settle
	udevadm control --stop-exec-queue || fail "udevadm control --stop-exec-queue failed"
	udev_paused=1
}
udev_resume() {
	[ "$udev_paused" = 1 ] || return 0
	udevadm control --start-exec-queue
	udev_paused=0
	settle
}

bk_img=
bk_loop=
bk_mnt=

# bk_setup SIZE: a fresh ext4 file system of SIZE on a loop device,
# mounted at $bk_mnt.
bk_setup() {
	bk_img=$LOFI_SCRATCH/backing-fs.img
	bk_mnt=$LOFI_SCRATCH/backing
	truncate -s "$1" "$bk_img"
	mkfs.ext4 -q -F "$bk_img" || fail "mkfs.ext4 of the backing file system failed"
	bk_loop=$(losetup -f --show "$bk_img") || fail "losetup of the backing file system failed"
	mkdir -p "$bk_mnt"
	bk_mount
}

bk_mount() {
	mount -t ext4 "$bk_loop" "$bk_mnt" || fail "mounting the backing file system failed"
}

bk_mounted() { mountpoint -q "$bk_mnt"; }

# bk_umount_wait SECS: unmount the backing file system, retrying while it
# is busy; fails if it stays busy for SECS seconds.
bk_umount_quiet() { umount "$bk_mnt" 2>/dev/null; }
bk_umount_wait() {
	within "$1" bk_umount_quiet && return 0
	fail "the backing file system is still busy $1 s later: $(umount "$bk_mnt" 2>&1)"
}

# bk_teardown: for EXIT traps, after lofi_teardown: thaw, unmount (lazily
# if it stays busy) and detach the loop device, ignoring errors.
bk_teardown() {
	local i
	set +e
	[ -n "$bk_loop" ] || return 0
	if bk_mounted; then
		fsfreeze -u "$bk_mnt" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			umount "$bk_mnt" 2>/dev/null && break
			sleep 0.1
		done
		bk_mounted && umount -l "$bk_mnt"
	fi
	losetup -d "$bk_loop" 2>/dev/null
	return 0
}

# within SECS CMD...: poll CMD until it succeeds, for up to SECS seconds of
# wall-clock time (wait_for counts polls, which take long under TCG).
within() {
	local end=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	while :; do
		"$@" && return 0
		[ "${EPOCHREALTIME/./}" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# running PID: PID exists and has not exited (a zombie has). No fork.
running() {
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*') '}
	[ -n "$s" ] && [ "${s%% *}" != Z ]
}
not_running() { ! running "$1"; }

# wait_exit SECS PID: wait up to SECS seconds for PID to exit.
wait_exit() { within "$1" not_running "$2"; }
