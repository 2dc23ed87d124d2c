#!/usr/bin/env bash
# lofi loads and unloads 20 times in a row, its control device coming and
# going each time.  (The runner fails the run on any kernel warning.)
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

for i in $(seq 1 20); do
	load_lofi
	wait_for 5 test -c /dev/lofictl || fail "round $i: /dev/lofictl did not appear"
	unload_lofi
	wait_for 5 test ! -e /dev/lofictl || fail "round $i: /dev/lofictl stayed after rmmod"
done
echo "ok: 20 load/unload rounds"
