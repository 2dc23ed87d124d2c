#!/usr/bin/env bash
# What `make run` shows: lofi loaded in a Rust-enabled kernel and its
# control device ready.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

echo "# uname -r"
uname -r
echo "# insmod lofi.ko"
load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"
echo "# grep lofi /proc/modules"
grep '^lofi ' /proc/modules
echo "# ls -l /dev/lofictl"
ls -l /dev/lofictl
echo "# dmesg | grep lofi"
dmesg | grep -iE 'lofi' | sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' | tail -n 12
echo "# rmmod lofi"
unload_lofi
