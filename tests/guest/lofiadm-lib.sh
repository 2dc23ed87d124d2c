# shellcheck shell=bash
# Helpers for the lofiadm guest tests (tests/guest/lofiadm-*.sh, set
# tests/sets/lofiadm). Source it after lib.sh.
#
# lofiadm is not built in the guest (it cannot compile): the VM runner
# builds the release binary on the host and passes its path as $LOFIADM.

LOFIADM=${LOFIADM:-$LOFI_ROOT/tools/lofiadm/target/release/lofiadm}
[ -x "$LOFIADM" ] || fail "$LOFIADM missing: the VM runner builds it on the host (make lofiadm)"

# The usage text's first line, which every usage error prints.
USAGE_LINE='Usage: lofiadm [-r] [--direct-io[=on|off]] [-o offset] [--sizelimit size]'
# The listing's header, in the illumos format "%-20s     %-30s\t%s\n".
HEADER=$(printf '%-20s     %-30s\t%s' 'Block Device' File Options)

# A command prefix for lofiadm, e.g. (setpriv --reuid=65534 ...).
RUN_AS=()

# run ARGS...: run lofiadm (after the RUN_AS prefix), setting RC (exit
# status), OUT and ERR (stdout and stderr, trailing newlines removed).
run() {
	RC=0
	"${RUN_AS[@]}" "$LOFIADM" "$@" >"$LOFI_SCRATCH/.out" 2>"$LOFI_SCRATCH/.err" || RC=$?
	OUT=$(cat "$LOFI_SCRATCH/.out")
	ERR=$(cat "$LOFI_SCRATCH/.err")
}

# ok ARGS...: lofiadm must succeed (status 0, nothing on stderr); its
# output is in OUT.
# shellcheck disable=SC2120 # the tests that source this pass the arguments
ok() {
	run "$@"
	[ "$RC" -eq 0 ] || fail "lofiadm $*: exit status $RC: $ERR"
	[ -z "$ERR" ] || fail "lofiadm $*: succeeded but wrote to stderr: $ERR"
}

# expect_error MESSAGE ARGS...: lofiadm must fail with status 1, print
# exactly "lofiadm: MESSAGE" on stderr and nothing on stdout.
expect_error() {
	local message=$1
	shift
	run "$@"
	[ "$RC" -eq 1 ] || fail "lofiadm $*: exit status $RC, want 1 (stderr: $ERR)"
	expect_eq "stderr of lofiadm $*" "$ERR" "lofiadm: $message"
	expect_eq "stdout of lofiadm $*" "$OUT" ""
}

# expect_usage ARGS...: a usage error: status 2, a reason and the usage
# on stderr, nothing on stdout.
expect_usage() {
	run "$@"
	[ "$RC" -eq 2 ] || fail "lofiadm $*: exit status $RC, want 2 (stderr: $ERR)"
	[[ $ERR == "lofiadm: "*$'\n'"$USAGE_LINE"* ]] || fail "lofiadm $*: no reason and usage on stderr: $ERR"
	expect_eq "stdout of lofiadm $*" "$OUT" ""
}

# row DEVICE FILE OPTIONS: one line of the listing.
row() {
	printf '%-20s     %-30s\t%s' "$1" "$2" "$3"
}

# expect_listing ROW...: the whole listing, header first.
expect_listing() {
	local want=$HEADER r
	for r in "$@"; do
		want+=$'\n'$r
	done
	ok
	expect_eq "listing" "$OUT" "$want"
}

# Unmap everything and unload lofi; for cleanup traps.
lofiadm_cleanup() {
	set +e
	if lofi_loaded; then
		"$LOFIADM" --json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    print(m["device"])' | while read -r dev; do
			"$LOFIADM" -d "$dev" -f
		done
		rmmod lofi 2>/dev/null
	fi
}
