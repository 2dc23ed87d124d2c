#!/usr/bin/env bash
# The guest half of the benchmark (scripts/bench.sh boots the guest with
# it; it is not a test and is in no test set): fio, always with direct=1,
# on one backing file through each target:
#   raw       the file itself
#   loop      a loop device, buffered (losetup --direct-io=off)
#   loop-dio  a loop device, direct I/O (losetup --direct-io=on)
#   lofi      a lofi device, buffered (lofi_map map FILE)
#   lofi-dio  a lofi device, direct I/O (lofi_map map FILE direct)
# for every store, round and job that $LOFI_SHARE/bench.env lists.
#
# lofi maps a file only once, so lofi and lofi-dio cannot be set up at the
# same time: each round has two passes, one with the buffered targets (raw,
# loop, lofi) set up together and one with the direct-I/O ones (loop-dio,
# lofi-dio), each pass a single fio run whose jobs run one after the other
# (stonewall): every job on every target of the pass before the next job.
# So the targets of each ratio (lofi/loop, lofi/raw, lofi-dio/loop-dio)
# run back to back, and fio starts once per pass, not once per job: under
# TCG, starting fio with its 60-odd libraries takes seconds.  Each round
# starts with the other pass and with another target, so that a drift in
# the host's speed spreads over all targets.  On ext4, before each job the
# backing file is written back and dropped from the page cache (on tmpfs
# its pages are the file).
#
# A target that cannot be set up (loop or lofi refusing direct I/O, a
# mapping that fails) is recorded as n/a with the reason, not as an error;
# the host decides what that means.  Every job on every target is a line of
# $LOFI_SHARE/runs.tsv: "store job target round ok FIO-JSON#JOB@TARGET"
# (the file relative to $LOFI_SHARE, the fio job of that name in it), "...
# na REASON" or "... failed REASON".  Each pass's fio job file is kept
# beside its output.  $LOFI_SHARE/guest.txt says what the guest was.
#
# bench.env sets BENCH_STORES (tmpfs, ext4: a file system made on /dev/vda),
# BENCH_JOBS, BENCH_TARGETS, BENCH_ROUNDS, BENCH_RUNTIME and BENCH_RAMP
# (seconds per job) and BENCH_SIZE (the backing file, bytes), and may set
# BENCH_COMPRESSED (algorithms) and BENCH_COMPRESSED_SIZE (bytes) for the
# compressed pass: a store "compressed" on tmpfs whose targets are lofi
# (the data uncompressed) and lofi-ALG, with the read jobs only.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"

map=$prog_dir/lofi_map
need_progs "$map"
[ -n "${LOFI_SHARE:-}" ] && [ -f "$LOFI_SHARE/bench.env" ] ||
	fail "no \$LOFI_SHARE/bench.env: run the benchmark through scripts/bench.sh"
# shellcheck source=/dev/null
. "$LOFI_SHARE/bench.env"
for v in BENCH_STORES BENCH_JOBS BENCH_TARGETS BENCH_ROUNDS BENCH_RUNTIME BENCH_RAMP BENCH_SIZE; do
	[ -n "${!v:-}" ] || fail "bench.env does not set $v"
done
command -v fio >/dev/null || fail "fio is not installed (scripts/provision.sh installs it)"

runs=$LOFI_SHARE/runs.tsv
: >"$runs"
cpus=$(nproc)
{
	echo "kernel $(uname -r)"
	echo "cpus $cpus"
	echo "memory_kib $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
	echo "fio $(fio --version)"
	echo "lofi_ko $LOFI_KO"
} >"$LOFI_SHARE/guest.txt"

# The targets set up: their device (or file) and what set it up.
declare -A dev=() kind=()
# Targets that cannot be set up on the current store, with the reason.
declare -A na=()
store_mounted=
why=

# teardown TARGET: undo its setup.  A device that does not go away ends
# the benchmark.
teardown() {
	case ${kind[$1]:-} in
	loop) losetup -d "${dev[$1]}" || fail "losetup -d ${dev[$1]} failed" ;;
	lofi) "$map" unmap "${dev[$1]}" || fail "unmap ${dev[$1]} failed" ;;
	esac
	unset "dev[$1]" "kind[$1]"
}

cleanup() {
	local t
	set +e
	for t in "${!kind[@]}"; do
		case ${kind[$t]} in
		loop) losetup -d "${dev[$t]}" ;;
		lofi) "$map" unmap "${dev[$t]}" force ;;
		esac
	done
	[ -z "$store_mounted" ] || umount "$store_mounted"
	lofi_loaded && rmmod lofi
}
trap cleanup EXIT

load_lofi
wait_for 5 test -c /dev/lofictl || fail "/dev/lofictl did not appear"

# fio_opts JOB: the job's fio options, one a line.
fio_opts() {
	case $1 in
	randread-4k-qd1) printf '%s\n' rw=randread bs=4k ioengine=psync iodepth=1 numjobs=1 ;;
	randread-4k-qd32) printf '%s\n' rw=randread bs=4k ioengine=libaio iodepth=32 numjobs="$cpus" ;;
	randwrite-4k-qd32) printf '%s\n' rw=randwrite bs=4k ioengine=libaio iodepth=32 numjobs="$cpus" ;;
	seqread-1m-qd8) printf '%s\n' rw=read bs=1M ioengine=libaio iodepth=8 numjobs=1 ;;
	seqwrite-1m-qd8) printf '%s\n' rw=write bs=1M ioengine=libaio iodepth=8 numjobs=1 ;;
	randrw-16k-qd16) printf '%s\n' rw=randrw rwmixread=70 bs=16k ioengine=libaio iodepth=16 numjobs=1 ;;
	*) return 1 ;;
	esac
}
for job in $BENCH_JOBS; do
	fio_opts "$job" >/dev/null || fail "unknown job $job"
done

# record STORE JOB TARGET ROUND STATUS WHAT...
record() {
	local store=$1 job=$2 target=$3 round=$4 status=$5
	shift 5
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$job" "$target" "$round" "$status" "$*" >>"$runs"
}

# lap: the seconds since the last lap, with a tenth, in $lap_s.  Builtins
# only: under TCG every program started costs time.
lap_last=${EPOCHREALTIME/./}
lap() {
	local now=${EPOCHREALTIME/./}
	lap_s=$(((now - lap_last) / 1000000)).$(((now - lap_last) / 100000 % 10))
	lap_last=$now
}

# setup TARGET FILE: set the target up on FILE (dev, kind), or set why it
# cannot be (why) and fail, leaving what it did for teardown.
setup() {
	local target=$1 file=$2 err=$LOFI_SCRATCH/setup.err d n
	why=
	case $target in
	raw) dev[$target]=$file ;;
	loop | loop-dio)
		local dio=off
		[ "$target" = loop ] || dio=on
		if ! d=$(losetup --find --show --direct-io="$dio" "$file" 2>"$err"); then
			why="losetup --direct-io=$dio failed: $(head -n 1 "$err")"
			return 1
		fi
		dev[$target]=$d
		kind[$target]=loop
		n="?"
		read -r n <"/sys/block/${d#/dev/}/loop/dio" || true
		if [ "$dio" = on ] && [ "$n" != 1 ]; then
			why="loop refused direct I/O (sysfs dio=$n)"
			return 1
		fi
		;;
	lofi | lofi-dio)
		local opt=()
		[ "$target" = lofi ] || opt=(direct)
		if ! d=$("$map" map "$file" "${opt[@]}" 2>"$err"); then
			why="lofi_map map FILE${opt[*]/#/ } failed: $(head -n 1 "$err")"
			return 1
		fi
		dev[$target]=$d
		kind[$target]=lofi
		if [[ $(<"$err") == *"direct I/O refused"* ]]; then
			why="lofi refused direct I/O"
			return 1
		fi
		wait_for 5 test -b "$d" || { why="$d did not appear"; return 1; }
		;;
	*) why="unknown target"; return 1 ;;
	esac
}

# pass STORE ROUND PASS FILE TARGET...: one fio run of every job on the
# targets that can be set up, in the order given.
pass() {
	local store=$1 round=$2 name=$3 file=$4 t job jobfile rel status
	shift 4
	local active=()
	lap
	for t in "$@"; do
		if [ -z "${na[$t]:-}" ] && ! setup "$t" "$file"; then
			na[$t]=$why
			teardown "$t"
		fi
		if [ -n "${na[$t]:-}" ]; then
			for job in $BENCH_JOBS; do record "$store" "$job" "$t" "$round" na "${na[$t]}"; done
			echo "  round $round $t: n/a: ${na[$t]}"
		else
			active+=("$t")
		fi
	done
	[ ${#active[@]} -gt 0 ] || return 0
	lap
	echo "  round $round, $name pass: ${active[*]} set up in $lap_s s"
	rel=raw/$store/$name.r$round.json
	jobfile=$LOFI_SHARE/raw/$store/$name.r$round.fio
	{
		printf '%s\n' "[global]" direct=1 time_based=1 "runtime=$BENCH_RUNTIME" "ramp_time=$BENCH_RAMP" \
			group_reporting=1 norandommap=1
		for job in $BENCH_JOBS; do
			for t in "${active[@]}"; do
				printf '\n[%s@%s]\n' "$job" "$t"
				printf '%s\n' "filename=${dev[$t]}" stonewall
				fio_opts "$job"
				[ "$store" = tmpfs ] ||
					echo "exec_prerun=dd of=$file oflag=nocache conv=notrunc,fdatasync count=0 status=none </dev/null"
			done
		done
	} >"$jobfile"
	status=0
	fio --output-format=json --output="$LOFI_SHARE/$rel" "$jobfile" >"$LOFI_SHARE/$rel.log" 2>&1 || status=$?
	lap
	echo "  round $round, $name pass: fio ran $(($(wc -w <<<"$BENCH_JOBS") * ${#active[@]})) jobs in $lap_s s (exit status $status)"
	for job in $BENCH_JOBS; do
		for t in "${active[@]}"; do
			if [ -s "$LOFI_SHARE/$rel" ]; then
				# A job fio could not run is missing or has an error in the output.
				record "$store" "$job" "$t" "$round" ok "$rel#$job@$t"
			else
				record "$store" "$job" "$t" "$round" failed "fio failed (exit status $status): $(tail -n 1 "$LOFI_SHARE/$rel.log")"
			fi
		done
	done
	for t in "${active[@]}"; do teardown "$t"; done
}

# store_up STORE DIR: mount the store on DIR, or set why not (why) and fail.
store_up() {
	why=
	mkdir -p "$2"
	case $1 in
	tmpfs)
		mount -t tmpfs -o "size=$((BENCH_SIZE / 1048576 + 64))m" lofi-bench "$2" ||
			{ why="mounting a tmpfs failed"; return 1; }
		;;
	ext4)
		[ -b /dev/vda ] || { why="no disk /dev/vda (LOFI_VM_DISK)"; return 1; }
		# Initialised in full now: no lazy init writing behind the runs.
		mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 /dev/vda ||
			{ why="mkfs.ext4 /dev/vda failed"; return 1; }
		mount -o noatime /dev/vda "$2" || { why="mounting /dev/vda failed"; return 1; }
		;;
	*) why="unknown store"; return 1 ;;
	esac
	store_mounted=$2
}

# The two passes, each with the targets of BENCH_TARGETS it holds.
buffered=()
direct=()
for t in $BENCH_TARGETS; do
	case $t in
	raw | loop | lofi) buffered+=("$t") ;;
	loop-dio | lofi-dio) direct+=("$t") ;;
	*) fail "unknown target $t" ;;
	esac
done
# rotate N ITEM...: the items, starting with the one N places on.
rotate() {
	local n=$1 i
	shift
	for ((i = 0; i < $#; i++)); do
		echo "${@:$(((i + n) % $# + 1)):1}"
	done
}

start=$(date +%s)
for store in $BENCH_STORES; do
	echo "=== store $store"
	na=()
	dir=$LOFI_SCRATCH/store-$store
	file=$dir/bench.img
	if store_up "$store" "$dir"; then
		echo "writing the $((BENCH_SIZE / 1048576)) MiB backing file $file"
		if ! dd if=/dev/zero of="$file" bs=1M count=$((BENCH_SIZE / 1048576)) conv=fsync status=none; then
			why="writing the backing file failed"
		fi
	fi
	case $file in *:*) why="the path $file has a colon, which fio takes for a separator" ;; esac
	if [ -n "$why" ]; then
		for t in $BENCH_TARGETS; do na[$t]="store: $why"; done
	fi
	mkdir -p "$LOFI_SHARE/raw/$store"
	for round in $(seq 1 "$BENCH_ROUNDS"); do
		mapfile -t b < <(rotate "$((round - 1))" "${buffered[@]}")
		mapfile -t d < <(rotate "$((round - 1))" "${direct[@]}")
		if [ $((round % 2)) = 1 ]; then
			pass "$store" "$round" buffered "$file" "${b[@]}"
			pass "$store" "$round" direct "$file" "${d[@]}"
		else
			pass "$store" "$round" direct "$file" "${d[@]}"
			pass "$store" "$round" buffered "$file" "${b[@]}"
		fi
	done
	if [ -n "$store_mounted" ]; then
		rm -f "$file"
		umount "$store_mounted" || fail "umount $store_mounted failed"
		store_mounted=
	fi
done
# Compressed images: the same data, mapped uncompressed (lofi) and as an
# image compressed with lofiadm -C for each algorithm (lofi-ALG), read
# with the read jobs of BENCH_JOBS, all targets set up at once (lofi maps
# the copies, which are different files), one fio run a round.  The data
# is made by tests/compressed/illumos_format.py mkimage: text, zeros and
# random bytes, so that both stored and compressed segments are read.
compressed_pass() {
	local dir=$LOFI_SCRATCH/store-compressed plain alg t job round rel jobfile status
	local jobs=() targets=(lofi)
	for job in $BENCH_JOBS; do
		case $job in *read*) [[ $job == randrw* ]] || jobs+=("$job") ;; esac
	done
	[ ${#jobs[@]} -gt 0 ] || return 0
	for alg in $BENCH_COMPRESSED; do targets+=("lofi-$alg"); done
	echo "=== store compressed: ${targets[*]}"
	mkdir -p "$dir" "$LOFI_SHARE/raw/compressed"
	mount -t tmpfs -o "size=$((BENCH_COMPRESSED_SIZE * 6 / 1048576 + 64))m" lofi-bench-c "$dir" ||
		fail "mounting a tmpfs failed"
	store_mounted=$dir
	plain=$dir/plain.img
	python3 "$LOFI_ROOT/tests/compressed/illumos_format.py" mkimage --size "$BENCH_COMPRESSED_SIZE" --seed 1 "$plain" >/dev/null ||
		fail "making the data failed"
	lap
	dev[lofi]=$("$map" map "$plain" ro) || fail "mapping $plain failed"
	kind[lofi]=lofi
	for alg in $BENCH_COMPRESSED; do
		cp "$plain" "$dir/$alg.img"
		"$LOFIADM" -C "$alg" "$dir/$alg.img" || fail "lofiadm -C $alg failed"
		echo "  $alg: $(stat -c %s "$dir/$alg.img") bytes of $BENCH_COMPRESSED_SIZE"
		dev[lofi-$alg]=$("$map" map "$dir/$alg.img") || fail "mapping the $alg image failed"
		kind[lofi-$alg]=lofi
	done
	for t in "${targets[@]}"; do
		wait_for 5 test -b "${dev[$t]}" || fail "${dev[$t]} did not appear"
	done
	lap
	echo "  compressed and mapped in $lap_s s"
	for round in $(seq 1 "$BENCH_ROUNDS"); do
		rel=raw/compressed/r$round.json
		jobfile=$LOFI_SHARE/raw/compressed/r$round.fio
		local order
		mapfile -t order < <(rotate "$((round - 1))" "${targets[@]}")
		{
			printf '%s\n' "[global]" direct=1 time_based=1 "runtime=$BENCH_RUNTIME" "ramp_time=$BENCH_RAMP" \
				group_reporting=1 norandommap=1
			for job in "${jobs[@]}"; do
				for t in "${order[@]}"; do
					printf '\n[%s@%s]\n' "$job" "$t"
					printf '%s\n' "filename=${dev[$t]}" stonewall
					fio_opts "$job"
				done
			done
		} >"$jobfile"
		status=0
		fio --output-format=json --output="$LOFI_SHARE/$rel" "$jobfile" >"$LOFI_SHARE/$rel.log" 2>&1 || status=$?
		lap
		echo "  round $round, compressed pass: fio ran $((${#jobs[@]} * ${#targets[@]})) jobs in $lap_s s (exit status $status)"
		for job in "${jobs[@]}"; do
			for t in "${targets[@]}"; do
				if [ -s "$LOFI_SHARE/$rel" ]; then
					record compressed "$job" "$t" "$round" ok "$rel#$job@$t"
				else
					record compressed "$job" "$t" "$round" failed "fio failed (exit status $status): $(tail -n 1 "$LOFI_SHARE/$rel.log")"
				fi
			done
		done
	done
	for t in "${targets[@]}"; do teardown "$t"; done
	umount "$dir" || fail "umount $dir failed"
	store_mounted=
}
[ -z "${BENCH_COMPRESSED:-}" ] || compressed_pass

echo "benchmark done in $(($(date +%s) - start))s: $(grep -c $'\tok\t' "$runs") runs, $(grep -c $'\tna\t' "$runs") n/a, $(grep -c $'\tfailed\t' "$runs") failed"
