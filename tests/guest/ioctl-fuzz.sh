#!/usr/bin/env bash
# Reliability scenario "Hostile ioctl input": lofi_fuzz sends at least
# 30,000 ioctls (1,000,000 in the long form) to /dev/lofictl and to
# /dev/lofi/N from a 64-bit process, and 10,000 (200,000) more from a
# 32-bit one: random command numbers and sizes, random structure contents,
# names of every kind (no NUL, relative, empty, PATH_MAX-1 bytes, every file
# type, lofi devices), minors 0, max, max+1, 2^32-1, bad user pointers
# (EFAULT), read-only control files (EPERM), forced and detach-at-last-close
# unmaps of open devices, maps asking for direct I/O (LOFI_FLAG_DIRECT_IO:
# granted or refused, the queries and the disk's block size must agree
# with what the map returned; some must have been made), capacity changes
# (LOFI_SET_CAPACITY: the new size must be the disk's; some must have
# succeeded, over both runs), and compressed images with damaged headers,
# indexes and segments (maps succeed or fail with EINVAL, reads return the
# data or EIO; some must have been mapped). Every result must be the one the documentation
# gives for that input (see tests/guest/prog/lofi_fuzz.c), and afterwards
# the mappings listed by the driver must be exactly those of the fuzzer's
# model (what its successful calls made), which it writes to model.list.
# The guest kernel log is judged by the runner (no warning). A run that
# outlasts its time budget (a call that blocks) is killed by a watchdog and
# reported with the fuzzer's kernel stack.
# Replay: the seed is printed; LOFI_FUZZ_SEED=S in the guest environment,
# or lofi_fuzz DIR CALLS S by hand, repeats the same calls (up to udev's
# timing). The 32-bit run uses seed S+1.
# Figure: calls, errnos seen with their counts, unexpected results (0).
# time-limit: 700
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

fuzz=$prog_dir/lofi_fuzz
fuzz32=$prog_dir/lofi_fuzz-32
map=$prog_dir/lofi_map
need_progs "$fuzz" "$map"

calls=$(stress_or 30000 1000000)
calls32=$(stress_or 10000 200000)
seed=${LOFI_FUZZ_SEED:-$(((RANDOM << 15) | RANDOM))}
echo "seed $seed"

cleanup() {
	set +e
	# The fuzzer clears its fixture's immutable flag; make sure, so that
	# the scratch directory can be removed.
	chattr -i "$PWD"/fuzz64/imm.img "$PWD"/fuzz32/imm.img 2>/dev/null
	lofi_teardown
}
trap cleanup EXIT

total_calls=0
total_unexpected=0
direct_asked=0
direct_granted=0
resizes=0
compressed=0
compressed_eio=0
labeled=0
rereads=0
errnos=
failures=()
# lofi_holders: every lofi disk left, and the processes holding one open.
lofi_holders() {
	local d fd target
	for d in /sys/block/lofi*; do
		[ -e "$d" ] && echo "$d: holders: $(find "$d/holders" -mindepth 1 -printf '%f ' 2>/dev/null)"
	done
	for fd in /proc/[0-9]*/fd/*; do
		target=$(readlink "$fd" 2>/dev/null) || continue
		case $target in /dev/lofi*) echo "$fd ($(cat "${fd%/fd/*}/comm" 2>/dev/null)) -> $target" ;; esac
	done
}
# run NAME BINARY CALLS SEED LIMIT: one fuzzer run (at most LIMIT seconds) in ./NAME; checks its report
# and that the driver's mappings are the fuzzer's model afterwards. A
# failure is recorded (the other run still runs), the test fails at the end.
run() {
	local name=$1 bin=$2 n=$3 s=$4 limit=$5 status=0 t0 t1 pid
	echo "=== $name: $n calls, seed $s"
	t0=$(date +%s)
	"$bin" "$PWD/$name" "$n" "$s" >"$name.out" 2>"$name.err" &
	pid=$!
	# A watchdog within the harness's time limit: a call that blocks is
	# reported with the fuzzer's kernel stack rather than as a timeout.
	while kill -0 "$pid" 2>/dev/null && [ "$(($(date +%s) - t0))" -lt "$limit" ]; do
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		# Where the fuzzer is (it answers SIGUSR1 when it waits), what
		# it said last (its own verdicts), then its kernel stack.
		kill -USR1 "$pid" 2>/dev/null
		sleep 2
		echo "$name: still running after $limit s; its last words:"
		tail -n 20 "$name.err"
		tail -n 5 "$name.out"
		echo "$name: wchan $(cat "/proc/$pid/wchan" 2>/dev/null), kernel stack:"
		cat "/proc/$pid/stack" 2>/dev/null
		lofi_holders
		kill -9 "$pid"
		wait "$pid" 2>/dev/null || true
		fail "$name hung or is too slow (seed $s, $(grep -c . "$name.out") lines of output; first verdict: $(grep -m1 '^FAIL' "$name.err" || echo none)): see its kernel stack above"
	fi
	wait "$pid" || status=$?
	t1=$(date +%s)
	cat "$name.out"
	head -n 40 "$name.err"
	echo "$name: $((t1 - t0)) s"
	grep -q '^RESULT ' "$name.out" || fail "$name did not report (exit status $status): $(head -n 1 "$name.err")"
	total_calls=$((total_calls + $(result "$name.out" calls)))
	total_unexpected=$((total_unexpected + $(result "$name.out" unexpected)))
	errnos="$errnos${errnos:+,}$(result "$name.out" errnos)"
	if [ "$status" -ne 0 ]; then
		failures+=("$name: exit status $status, $(result "$name.out" unexpected) unexpected results (seed $s); first: $(grep -m1 '^FAIL' "$name.err")")
	fi
	[ "$(result "$name.out" calls)" -ge "$n" ] || failures+=("$name made $(result "$name.out" calls) calls, want $n")
	[ "$(result "$name.out" maps)" -gt 0 ] || failures+=("$name mapped nothing")
	[ "$(result "$name.out" unmaps)" -gt 0 ] || failures+=("$name unmapped nothing")
	[ "$(result "$name.out" direct-asked)" -gt 0 ] 2>/dev/null || failures+=("$name made no map asking for direct I/O")
	[ "$(result "$name.out" labeled)" -gt 0 ] 2>/dev/null || failures+=("$name made no labeled map")
	[ "$(result "$name.out" rereads)" -gt 0 ] 2>/dev/null || failures+=("$name re-read no partition table (BLKRRPART)")
	labeled=$((labeled + $(result "$name.out" labeled)))
	rereads=$((rereads + $(result "$name.out" rereads)))
	resizes=$((resizes + $(result "$name.out" resizes)))
	compressed=$((compressed + $(result "$name.out" compressed)))
	compressed_eio=$((compressed_eio + $(result "$name.out" compressed_eio)))
	direct_asked=$((direct_asked + $(result "$name.out" direct-asked)))
	direct_granted=$((direct_granted + $(result "$name.out" direct-granted)))
	[ -f "$name/model.list" ] || fail "$name wrote no model.list"
	# The mappings are exactly what the fuzzer's successful calls made.
	[ "$(result "$name.out" mappings)" -gt 0 ] || failures+=("$name left no mapping: the comparison proves little")
	"$map" list >"$name.list" || fail "lofi_map list failed"
	if cmp -s "$name.list" "$name/model.list"; then
		echo "$name: $(wc -l <"$name.list") mappings, as in the fuzzer's model"
	else
		diff "$name/model.list" "$name.list" | cut -c1-200
		failures+=("$name: the driver's mappings differ from the fuzzer's model (see the diff above)")
	fi
}

load_lofi lofi_max_files=16
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

start=$(date +%s)
# The limits are a hang watchdog, not a timing test: about four times what
# a run takes on a slow 2-core TCG host (fuzz64 70 s, fuzz32 30 s).
run fuzz64 "$fuzz" "$calls" "$seed" "$(stress_or 400 2400)"
if [ -x "$fuzz32" ]; then
	# A 32-bit caller: same structure, same numbers (no compat
	# translation); starts from the mappings the 64-bit run left.
	run fuzz32 "$fuzz32" "$calls32" "$((seed + 1))" "$(stress_or 150 900)"
else
	echo "note: $fuzz32 missing (no gcc-multilib on the host): 64-bit calls only"
fi
elapsed=$(($(date +%s) - start))
# Rarer calls, judged over both runs: a successful resize needs a
# read-write mapping at the right moment, which a short 32-bit run may
# not meet.
[ "$resizes" -gt 0 ] || failures+=("no successful LOFI_SET_CAPACITY")
[ "$compressed" -gt 0 ] || failures+=("no compressed image was mapped")

"$map" unmap-all force || fail "lofi_map unmap-all force failed"
no_disks() { ! compgen -G '/sys/block/lofi*' >/dev/null; }
wait_for 10 no_disks || fail "lofi disks left after unmap-all: $(echo /sys/block/lofi*)"
expect_eq "mappings after unmap-all" "$("$map" list)" ""
unload_lofi

# The errnos of both runs, summed: EINVAL:n,ENOTTY:n,...
errnos=$(echo "$errnos" | tr ',' '\n' | awk -F: '$1 != "none" && $1 != "" { n[$1] += $2 }
	END { for (e in n) print e ":" n[e] }' | sort -t: -k2,2nr | paste -sd, -)
figure ioctl-fuzz calls="$total_calls" unexpected="$total_unexpected" errnos-seen="${errnos:-none}" \
	direct-maps="$direct_granted/$direct_asked" resizes="$resizes" labeled-maps="$labeled" \
	partition-rereads="$rereads" compressed-maps="$compressed" compressed-eio="$compressed_eio" \
	seconds="$elapsed" seed="$seed"
if [ ${#failures[@]} -gt 0 ]; then
	printf 'FAIL: %s\n' "${failures[@]}"
	fail "${failures[0]}"
fi
echo "ok: $total_calls calls in $elapsed s, 0 unexpected results"
