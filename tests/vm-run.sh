#!/usr/bin/env bash
# Boot the test kernel in QEMU (virtme-ng, TCG unless LOFI_KVM=1), run guest
# tests there as root against the freshly built lofi.ko, and judge the run:
# every test's result, plus the guest kernel log, which fails the run on any
# warning, BUG, oops, lockdep report, sleep-in-atomic, Rust panic or KUnit
# failure.  A guest that panics, hangs or never finishes fails the run.
#
# usage: tests/vm-run.sh [--timeout SECONDS] [--out DIR] TEST|@SET...
#   TEST   a script tests/guest/TEST.sh (or tests/selftest/guest/TEST.sh)
#   @SET   every test listed in tests/sets/SET
# Prints "PASS name" / "FAIL name why" lines and ends with
# "N passed, N failed"; exits 1 if anything failed.
#
# Environment: LOFI_VM_TIMEOUT (whole run, default 1200 s), LOFI_KVM=1,
# LOFI_VM_CPUS (2), LOFI_VM_MEMORY (2G), KDIR (another kernel build tree),
# LOFI_TEST_TIMEOUT (each guest test, default 300 s), LOFI_STRESS=1 (the
# long form of the reliability scenarios), LOFI_VM_DISK (a raw image file
# attached as the guest's /dev/vda), LOFI_VM_SHARE (a directory shared
# read-write with the guest, at the same path, as $LOFI_SHARE), LOFI_KO (a
# lofi.ko already built against KDIR, under a path the guest sees, to load
# instead of building drivers/block/lofi/lofi.ko in the work tree),
# LOFI_LIFECYCLE_CYCLES and LOFI_LIFECYCLE_BUDGET (see tests/guest/lifecycle.sh),
# LOFI_FUZZ_SEED and LOFI_FUZZ_TRACE=1 (see tests/guest/ioctl-fuzz.sh).
set -euo pipefail
. "$(dirname "$0")/../scripts/lib/common.sh"

timeout_s=${LOFI_VM_TIMEOUT:-1200}
out=
tests=()
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) timeout_s=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	@*)
		set_file=$LOFI_ROOT/tests/sets/${1#@}
		[ -f "$set_file" ] || die "no test set ${1#@} (tests/sets/${1#@})"
		while read -r t _; do
			case $t in '' | '#'*) ;; *) tests+=("$t") ;; esac
		done <"$set_file"
		shift
		;;
	-*) die "unknown option $1" "see the usage at the top of tests/vm-run.sh" ;;
	*) tests+=("$1"); shift ;;
	esac
done
[ ${#tests[@]} -gt 0 ] || die "no tests named" "usage: tests/vm-run.sh [--timeout S] TEST|@SET..."

if [ -z "${KDIR:-}" ]; then
	KDIR=$("$LOFI_ROOT/scripts/provision.sh")
fi
export KDIR
if [ -n "${LOFI_KO:-}" ]; then
	[ -f "$LOFI_KO" ] || die "LOFI_KO=$LOFI_KO is not a file"
else
	"$LOFI_ROOT/scripts/build-module.sh" >/dev/null 2>"$LOFI_CACHE/logs/module-build.log" || {
		cat "$LOFI_CACHE/logs/module-build.log" >&2
		die "could not build lofi.ko"
	}
	LOFI_KO=$LOFI_ROOT/drivers/block/lofi/lofi.ko
fi
# The selftest guest tests need the fault-injection module.
if printf '%s\n' "${tests[@]}" | grep -q '^selftest-'; then
	"$LOFI_ROOT/scripts/build-module.sh" tests/selftest >/dev/null 2>"$LOFI_CACHE/logs/selftest-build.log" || {
		cat "$LOFI_CACHE/logs/selftest-build.log" >&2
		die "could not build the selftest module"
	}
fi

# The guest cannot compile: build the guest test programs here.
prog_dir=$LOFI_ROOT/tests/guest/prog/out
make -s -C "$LOFI_ROOT/tests/guest/prog" OUT="$prog_dir" >"$LOFI_CACHE/logs/guest-prog-build.log" 2>&1 || {
	cat "$LOFI_CACHE/logs/guest-prog-build.log" >&2
	die "could not build the guest test programs (tests/guest/prog)"
}

# lofiadm too, for its tests and the demo (cargo: quick when up to date).
make -s -C "$LOFI_ROOT" lofiadm >"$LOFI_CACHE/logs/lofiadm-build.log" 2>&1 || {
	cat "$LOFI_CACHE/logs/lofiadm-build.log" >&2
	die "could not build lofiadm (tools/lofiadm)"
}
lofiadm=$LOFI_ROOT/tools/lofiadm/target/release/lofiadm

kernel_image=$KDIR/arch/x86/boot/bzImage
# vng runs its helpers (virtme-run, ...) from PATH.
export PATH="$LOFI_VENV/bin:$PATH"
[ -f "$kernel_image" ] || die "no kernel image at $kernel_image"
if [ -z "$out" ]; then
	mkdir -p "$LOFI_ROOT/tests/out"
	out=$(mktemp -d "$LOFI_ROOT/tests/out/run.XXXXXX")
else
	rm -rf "$out"
	mkdir -p "$out"
	# Absolute: the guest sees the directory at the same path.
	out=$(cd "$out" && pwd)
fi

# Host preparation: a test whose header has "# host-prepare: SCRIPT ARGS"
# (SCRIPT relative to the work tree) gets SCRIPT ARGS DIR run here first,
# DIR being $out/prep/NAME, which the guest reads as $LOFI_PREP: for pure
# computation (encoding images) that TCG makes twenty times slower. A
# failed preparation leaves no DIR, and the test fails on it (its log is
# DIR.log).
for name in "${tests[@]}"; do
	script=$LOFI_ROOT/tests/guest/$name.sh
	[ -f "$script" ] || continue
	prepare=$(sed -n 's/^# host-prepare: //p' "$script" | head -n 1)
	[ -n "$prepare" ] || continue
	read -r -a prepare_cmd <<<"$prepare"
	prep_dir=$out/prep/$name
	mkdir -p "$out/prep"
	if ! LOFI_STRESS=${LOFI_STRESS:-0} bash "$LOFI_ROOT/${prepare_cmd[0]}" "${prepare_cmd[@]:1}" "$prep_dir" >"$prep_dir.log" 2>&1; then
		log "host preparation of $name failed (the test will fail): $prep_dir.log"
		rm -rf "$prep_dir"
	fi
done

vng_args=(--run "$kernel_image" --force-9p --disable-microvm --verbose
	--cpus "${LOFI_VM_CPUS:-2}" --memory "${LOFI_VM_MEMORY:-2G}" --rwdir="$out")
# The guest's root is the host's, read-only over 9p, where every exec
# and lookup is a round trip to the host: cache=loose lets the guest
# cache them (exec of a small program drops from about 0.35 s to 0.15 s
# under TCG, and the VM suites are thousands of execs). Nothing the guest
# reads from its root changes during a run: what the host writes while
# the guest runs is in --rwdir directories, mounted uncached. The last
# rootflags= on the command line wins, so this replaces virtme-ng's own
# (the same flags, plus the cache mode).
vng_args+=(--append "rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose")
[ "${LOFI_KVM:-0}" = 1 ] || vng_args+=(--disable-kvm)
# A persistent disk (/dev/vda in the guest) and a directory shared across
# boots, for tests that reset the guest (tests/crash-durability.sh).
if [ -n "${LOFI_VM_DISK:-}" ]; then
	[ -f "$LOFI_VM_DISK" ] || die "LOFI_VM_DISK=$LOFI_VM_DISK is not a file"
	# "=": the value starts with "-", which argparse would take for an option.
	vng_args+=("--qemu-opts=-drive file=$LOFI_VM_DISK,if=virtio,format=raw,cache=writeback")
fi
if [ -n "${LOFI_VM_SHARE:-}" ]; then
	[ -d "$LOFI_VM_SHARE" ] || die "LOFI_VM_SHARE=$LOFI_VM_SHARE is not a directory"
	vng_args+=(--rwdir="$LOFI_VM_SHARE")
fi
# The guest's command goes in a script in the shared output directory:
# virtme-ng passes the command on the kernel command line, whose 2048
# bytes (x86) a long list of tests overflows, cutting off init= after it.
guest_cmd="env LOFI_KO=$LOFI_KO LOFI_PROG_DIR=$prog_dir LOFIADM=$lofiadm LOFI_STRESS=${LOFI_STRESS:-0} LOFI_TEST_TIMEOUT=${LOFI_TEST_TIMEOUT:-300} LOFI_LIFECYCLE_CYCLES=${LOFI_LIFECYCLE_CYCLES:-} LOFI_LIFECYCLE_BUDGET=${LOFI_LIFECYCLE_BUDGET:-0} LOFI_SHARE=${LOFI_VM_SHARE:-} LOFI_FUZZ_SEED=${LOFI_FUZZ_SEED:-} LOFI_FUZZ_TRACE=${LOFI_FUZZ_TRACE:-} bash $LOFI_ROOT/tests/guest/harness.sh $out ${tests[*]}"
printf 'exec %s\n' "$guest_cmd" >"$out/guest-run.sh"
guest_cmd="bash $out/guest-run.sh"

# Host actions a guest test may ask for (tests/guest/lib.sh host_delete):
# deleting a file of the shared output directory from the host side, as
# another machine would delete a file on a network filesystem.
host_actions() {
	local name
	while sleep 0.2; do
		[ -f "$out/host-delete" ] || continue
		name=$(cat "$out/host-delete")
		case $name in
		"" | */* | . | ..) echo "refused: $name" >"$out/host-delete.done" ;;
		*) rm -f -- "${out:?}/$name" && echo "deleted: $name" >"$out/host-delete.done" ;;
		esac
		rm -f "$out/host-delete"
	done
}
host_actions &
host_actions_pid=$!
trap 'kill "$host_actions_pid" 2>/dev/null || true' EXIT

log "booting $(basename "$KDIR") for: ${tests[*]} (limit ${timeout_s}s; console: $out/console.log)"
start=$(date +%s)
vm_status=0
(cd "$LOFI_ROOT" && timeout -k 10 "$timeout_s" "$LOFI_VENV/bin/vng" "${vng_args[@]}" --exec "$guest_cmd") \
	</dev/null >"$out/console.log" 2>&1 || vm_status=$?
kill "$host_actions_pid" 2>/dev/null
log "VM finished in $(($(date +%s) - start))s"

passed=0
failed=0
report() { # report PASS|FAIL NAME [WHY]
	echo "$*" | sed 's/ *$//'
	if [ "$1" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
show_console_tail() {
	echo "--- last lines of $out/console.log:"
	tail -n 40 "$out/console.log" | sed 's/^/    /'
	echo "---"
}

# 1. Each guest test's own verdict.
if [ -f "$out/results" ]; then
	while read -r verdict name why; do
		report "$verdict" "$name" "$why"
		[ "$verdict" = PASS ] || sed 's/^/    /' "$out/$name.log" 2>/dev/null | tail -n 30
	done <"$out/results"
fi

# 2. Did the guest finish?
if [ "$vm_status" -eq 124 ] || [ "$vm_status" -eq 137 ]; then
	report FAIL vm "guest timed out after ${timeout_s}s (hung)"
	show_console_tail
elif [ ! -f "$out/done" ] && [ -s "$out/reset-requested" ]; then
	# A test may end the run by resetting the guest (sysrq b), saying so
	# first; it passes if the reset is what happened.
	reset_test=$(cat "$out/reset-requested")
	if grep -q 'sysrq: Resetting' "$out/console.log"; then
		echo "PASS $reset_test ended by the guest reset it asked for" >>"$out/results"
		report PASS "$reset_test" "(ended by the guest reset it asked for)"
	else
		report FAIL "$reset_test" "asked for a guest reset, but the guest did not reset"
		show_console_tail
	fi
elif [ ! -f "$out/done" ]; then
	report FAIL vm "guest did not finish its tests (panic or crash; vng status $vm_status)"
	show_console_tail
fi
# Tests that never reported (the guest died first) are failures too.
for t in "${tests[@]}"; do
	grep -qE "^(PASS|FAIL) $t( |$)" "$out/results" 2>/dev/null || report FAIL "$t" "no result (guest died or hung first)"
done

# 3. The guest kernel log.
{ cat "$out/dmesg.log" 2>/dev/null; cat "$out/console.log"; } |
	sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' | grep -E "$KERNEL_LOG_PROBLEMS" | awk '!seen[$0]++' >"$out/kernel-problems" || true
if [ -s "$out/kernel-problems" ]; then
	report FAIL kernel-log "$(wc -l <"$out/kernel-problems") problem line(s) in the guest kernel log"
	head -n 20 "$out/kernel-problems" | sed 's/^/    /'
	echo "    (full log: $out/dmesg.log and $out/console.log)"
fi

# 4. KUnit results (KTAP), kept for the reader.
sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' "$out/dmesg.log" 2>/dev/null |
	grep -E '^ *(KTAP version|# Subtest:|(not )?ok [0-9]+|# [a-z_]+: pass:)' >"$out/kunit.ktap" || true

# 5. The figures the reliability scenarios measured, as a table.
print_figures "$out/figures"

# 6. Where the guest's time went (the budget of make check), slowest first.
if [ -s "$out/times" ] && [ "$(wc -l <"$out/times")" -gt 1 ]; then
	echo "guest seconds per test, slowest first: $(sort -k2,2nr "$out/times" | head -n 10 |
		awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}')"
fi

echo "vm-run results: $out"
echo "vm-run: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
