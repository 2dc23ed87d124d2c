#!/usr/bin/env bash
# lofiadm end to end against the real module, as root: every command and
# its output (map, map at a device, read-only, query both ways, list as a
# table and as JSON, unmap by file and by every device name form, forced
# unmap), relative and symlinked file names, and every error message with
# its exit status: usage errors (2), the checks made before the driver is
# asked, and the driver's refusals (EBUSY, EEXIST, ERANGE, EINVAL, ENXIO,
# ENOENT, EAGAIN), and the control device missing.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

trap lofiadm_cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
for f in a b c d e; do truncate -s 1M "$f.img"; done
S=$PWD

echo "=== list, empty"
expect_listing
ok --json
expect_eq "empty JSON listing" "$OUT" "[]"

echo "=== map"
ok -a a.img
expect_eq "lofiadm -a a.img" "$OUT" /dev/lofi/1
# The node is there when lofiadm returns (it waits for it).
[ -b /dev/lofi/1 ] || fail "/dev/lofi/1 is not a block device right after lofiadm -a"
ok -r -a b.img
expect_eq "lofiadm -r -a b.img" "$OUT" /dev/lofi/2
expect_eq "blockdev --getro /dev/lofi/2" "$(blockdev --getro /dev/lofi/2)" 1
expect_eq "blockdev --getro /dev/lofi/1" "$(blockdev --getro /dev/lofi/1)" 0
# At a given device: nothing printed; /dev/rlofi/N and lofiN name it too.
ok -a c.img /dev/lofi/5
expect_eq "lofiadm -a c.img /dev/lofi/5" "$OUT" ""
[ -b /dev/lofi/5 ] || fail "/dev/lofi/5 is not a block device right after lofiadm -a"
ok --readonly --add ./d.img /dev/rlofi/7
ok -a "$S/e.img" lofi9
expect_listing \
	"$(row /dev/lofi/1 "$S/a.img" -)" \
	"$(row /dev/lofi/2 "$S/b.img" Readonly)" \
	"$(row /dev/lofi/5 "$S/c.img" -)" \
	"$(row /dev/lofi/7 "$S/d.img" Readonly)" \
	"$(row /dev/lofi/9 "$S/e.img" -)"

echo "=== JSON listing"
ok --json
python3 - "$OUT" "$S" <<'PY' || fail "JSON listing is wrong: $OUT"
import json, sys
got = json.loads(sys.argv[1])
s = sys.argv[2]
want = [
    {"device": f"/dev/lofi/{n}", "node": f"/dev/lofi{n}", "number": n, "file": f"{s}/{f}",
     "readonly": ro, "compressed": False, "algorithm": None, "labeled": False, "partitions": [],
     "direct_io": False, "block_size": 512, "offset": 0, "sizelimit": 0}
    for n, f, ro in [(1, "a.img", False), (2, "b.img", True), (5, "c.img", False),
                     (7, "d.img", True), (9, "e.img", False)]
]
assert got == want, f"got {got}\nwant {want}"
PY

echo "=== query"
for name in a.img ./a.img "$S/a.img" "$S/../${S##*/}/a.img"; do
	ok "$name"
	expect_eq "lofiadm $name" "$OUT" /dev/lofi/1
done
ln -s a.img link.img
ok link.img
expect_eq "lofiadm link.img (a symlink to a.img)" "$OUT" /dev/lofi/1
for name in /dev/lofi/2 /dev/rlofi/2 lofi2; do
	ok "$name"
	expect_eq "lofiadm $name" "$OUT" "$S/b.img"
done

echo "=== errors before the driver is asked"
truncate -s 1000 odd.img
: >empty.img
mkdir dir
mkfifo fifo
expect_error "nope.img: No such file or directory" -a nope.img
expect_error "size of $S/odd.img is not a multiple of 512" -a odd.img
expect_error "size of $S/empty.img is 0" -a empty.img
expect_error "$S/dir is not a regular file, block, or character device" -a dir
expect_error "$S/fifo is not a regular file, block, or character device" -a fifo
expect_error "/dev/null is a character device: lofi maps regular files and block devices only" -a /dev/null
expect_error "cannot use lofi on itself" -a /dev/lofi/1
ln -s /dev/lofi/1 devlink
expect_error "cannot use lofi on itself" -a devlink
# Another node for the same disk is recognised through sysfs.
IFS=: read -r major minor </sys/block/lofi1/dev
mknod alias b "$major" "$minor"
expect_error "cannot use lofi on itself" -a alias
truncate -s 1M f.img
for bad in /dev/lofi/x /dev/lofi/01 /dev/rlofi/ lofi lofi3x disk3 /dev/loop0; do
	expect_error "malformed device name $bad" -a f.img "$bad"
done
for bad in /dev/lofi/x /dev/lofi/ lofi3x; do
	expect_error "malformed device name $bad" "$bad"
	expect_error "malformed device name $bad" -d "$bad"
done
expect_error "/nonexistent/f.img: No such file or directory" /nonexistent/f.img
expect_error "/nonexistent/f.img: No such file or directory" -d /nonexistent/f.img

echo "=== errors from the driver"
expect_error "could not map file $S/a.img: Device or resource busy" -a a.img
expect_error "could not map file $S/a.img: Device or resource busy" -r -a a.img
expect_error "could not map file $S/f.img to /dev/lofi/5: File exists" -a f.img /dev/lofi/5
expect_error "could not map file $S/f.img to lofi129: Numerical result out of range" -a f.img lofi129
expect_error "could not map file $S/f.img to /dev/lofi/0: Invalid argument" -a f.img /dev/lofi/0
expect_error "could not find device for $S/f.img: No such file or directory" f.img
expect_error "could not find filename for /dev/lofi/3: No such device or address" /dev/lofi/3
expect_error "could not find filename for lofi0: Invalid argument" lofi0
expect_error "could not unmap file $S/f.img: No such file or directory" -d f.img
expect_error "could not unmap device /dev/lofi/3: No such device or address" -d /dev/lofi/3
# A read-only file can be mapped again read-only, not writable.
ok -r -a b.img
expect_eq "second read-only mapping of b.img" "$OUT" /dev/lofi/3
expect_error "could not map file $S/b.img: Device or resource busy" -a b.img
ok -d /dev/lofi/3

echo "=== usage errors"
expect_usage -r
expect_usage -f a.img
expect_usage -a a.img -d a.img
expect_usage -a a.img /dev/lofi/4 extra
expect_usage -d a.img /dev/lofi/1
expect_usage a.img b.img
expect_usage --json a.img
expect_usage -x
expect_usage -a
expect_usage -C gzip -a a.img
expect_usage -U
expect_usage -U a.img b.img
expect_usage --direct-io a.img
expect_usage --direct-io=off -d a.img
expect_usage --direct-io=yes -a a.img
ok --help
[[ $OUT == "$USAGE_LINE"* ]] || fail "--help does not start with the usage: $OUT"
ok --version
[[ $OUT == "lofiadm "[0-9]* ]] || fail "--version: $OUT"

echo "=== unmap"
# A busy device: refused (after the bounded EBUSY retry), then forced.
exec 7</dev/lofi/1
t0=$(date +%s)
expect_error "could not unmap device /dev/lofi/1: Device or resource busy" -d /dev/lofi/1
t=$(($(date +%s) - t0))
[ "$t" -ge 4 ] && [ "$t" -le 30 ] || fail "the refused unmap of a busy device took ${t}s, want about 5"
expect_error "could not unmap file $S/a.img: Device or resource busy" -d a.img
ok -d /dev/lofi/1 -f
exec 7<&-
wait_for 10 test ! -e /dev/lofi/1 || fail "/dev/lofi/1 still exists after its last close"
# By relative file name, by each device form, by a deleted file's name.
ok -d b.img
ok -d /dev/rlofi/5
ok --delete lofi7
rm e.img
ok -d e.img
expect_listing
! compgen -G '/sys/block/lofi*' >/dev/null || fail "lofi disks left: $(echo /sys/block/lofi*)"

echo "=== no free device (lofi_max_files=2)"
unload_lofi
load_lofi lofi_max_files=2
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
ok -a a.img
ok -a b.img
expect_error "could not map file $S/c.img: Resource temporarily unavailable" -a c.img
expect_error "could not map file $S/c.img to /dev/lofi/3: Numerical result out of range" -a c.img /dev/lofi/3
expect_listing "$(row /dev/lofi/1 "$S/a.img" -)" "$(row /dev/lofi/2 "$S/b.img" -)"
ok -d a.img
ok -d b.img
unload_lofi

echo "=== no driver"
expect_error "cannot open /dev/lofictl (is the lofi module loaded?): No such file or directory"
expect_error "cannot open /dev/lofictl (is the lofi module loaded?): No such file or directory" -a a.img
echo "ok: lofiadm commands, listings and messages"
