#!/usr/bin/env bash
# lofiadm without the right to change mappings. A non-root user (uid
# 65534) can list and query, since lofiadm opens /dev/lofictl (mode 0644)
# read-only for them, but gets the illumos permission message, exit
# status 1, for map and unmap. The same holds for root when the control
# device can only be opened read-only (mode 0444 and no
# CAP_DAC_OVERRIDE): queries work through the read-only file.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
# shellcheck source=tests/guest/lofiadm-lib.sh
. "$LOFI_ROOT/tests/guest/lofiadm-lib.sh"

cleanup() {
	chmod 0644 /dev/lofictl 2>/dev/null
	lofiadm_cleanup
}
trap cleanup EXIT

no_permission="you do not have permission to perform that operation."
# The user must reach the scratch files and the lofiadm binary.
chmod 0755 "$LOFI_SCRATCH"
S=$PWD
truncate -s 1M a.img b.img
chmod 0644 a.img b.img

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
ok -a a.img
expect_eq "root maps a.img" "$OUT" /dev/lofi/1

# queries_work: list, JSON, query by device and by file.
queries_work() {
	expect_listing "$(row /dev/lofi/1 "$S/a.img" -)"
	ok --json
	[[ $OUT == '[{'*'"device":"/dev/lofi/1"'* ]] || fail "JSON listing: $OUT"
	ok /dev/lofi/1
	expect_eq "query /dev/lofi/1" "$OUT" "$S/a.img"
	ok a.img
	expect_eq "query a.img" "$OUT" /dev/lofi/1
}

# changes_refused: map and unmap fail with the permission message and
# change nothing.
changes_refused() {
	expect_error "$no_permission" -a b.img
	expect_error "$no_permission" -r -a b.img /dev/lofi/4
	expect_error "$no_permission" --direct-io -a b.img
	expect_error "$no_permission" -d /dev/lofi/1
	expect_error "$no_permission" -d a.img -f
	# The checks that need no driver still come first, as on illumos.
	expect_error "nope.img: No such file or directory" -a nope.img
	expect_error "malformed device name lofi1x" -d lofi1x
	expect_listing "$(row /dev/lofi/1 "$S/a.img" -)"
}

echo "=== uid 65534"
RUN_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
expect_eq "id -u as the test user" "$("${RUN_AS[@]}" id -u)" 65534
queries_work
changes_refused

echo "=== root, control device read-only (mode 0444, no CAP_DAC_OVERRIDE)"
chmod 0444 /dev/lofictl
RUN_AS=(setpriv "--inh-caps=-dac_override,-dac_read_search" "--bounding-set=-dac_override,-dac_read_search")
expect_eq "id -u" "$("${RUN_AS[@]}" id -u)" 0
queries_work
changes_refused
chmod 0644 /dev/lofictl

echo "=== root again"
RUN_AS=()
ok -d a.img
expect_listing
echo "ok: queries work read-only; map and unmap are refused with the permission message"
