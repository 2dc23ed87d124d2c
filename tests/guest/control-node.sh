#!/usr/bin/env bash
# /dev/lofictl appears with mode 0644, owner root, when lofi loads, answers
# an unknown ioctl with ENOTTY, and vanishes when lofi unloads.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

[ ! -e /dev/lofictl ] || fail "/dev/lofictl exists before lofi is loaded"
load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
expect_eq "mode/owner of /dev/lofictl" "$(stat -c '%a %U %G %F' /dev/lofictl)" "644 root root character special file"
[ -d /sys/class/misc/lofictl ] || fail "/sys/class/misc/lofictl missing"
expect_eq "dev number" "$(cat /sys/class/misc/lofictl/dev)" \
	"$(printf '%d:%d' "0x$(stat -c %t /dev/lofictl)" "0x$(stat -c %T /dev/lofictl)")"

python3 - <<'PY' || fail "unknown ioctl on /dev/lofictl"
import errno, fcntl, os
fd = os.open("/dev/lofictl", os.O_RDONLY)
try:
    fcntl.ioctl(fd, 0x12345678, b"\0" * 16)
except OSError as e:
    assert e.errno == errno.ENOTTY, f"got {errno.errorcode[e.errno]}, want ENOTTY"
else:
    raise SystemExit("unknown ioctl succeeded")
PY

unload_lofi
wait_for 5 test ! -e /dev/lofictl || fail "/dev/lofictl still exists after rmmod"
[ ! -e /sys/class/misc/lofictl ] || fail "/sys/class/misc/lofictl still exists after rmmod"
echo "ok: /dev/lofictl 0644 root:root, ENOTTY for unknown ioctls, removed on unload"
