#!/usr/bin/env bash
# `make bench`: compare lofi with Linux's loop in one guest, on one backing
# file, through five targets (the file itself, loop buffered and direct,
# lofi buffered and direct), two backing stores (tmpfs, and ext4 on a
# virtio disk) and six fio jobs, round after round.  Not a test: it prints
# a table with the ratios lofi/loop, lofi-DIO/loop-DIO and lofi/raw, and
# leaves results.json (every figure of every round, and the medians) and
# chart.png.  Documentation/dev-tools/lofi-testing.rst, "Benchmark", says
# how to read them.
#
# It boots a kernel without the test kernel's debugging
# (scripts/kconfig/lofi-bench.config; built and cached on first use by
# scripts/provision.sh --bench, about 12 minutes) with tests/vm-run.sh and
# the guest half tests/guest/bench.sh, and loads a lofi.ko built against
# that kernel in a copy of the sources (tests/out/bench/module), so the
# work tree's drivers/block/lofi/lofi.ko, built against the test kernel,
# stays as it is.
#
# usage: scripts/bench.sh [--smoke] [--out DIR]
#   --smoke  the short form make check can run: the test kernel (no
#            benchmark kernel build), one round of 1 s, 64 MiB on tmpfs,
#            two jobs; ends with "N passed, N failed" (a target passes if it
#            produced a figure for every job, loop-dio may be n/a; the
#            JSON and the chart must be written)
#   --out    results directory (default tests/out/bench/run-DATE, with
#            tests/out/bench/latest pointing at it; --smoke:
#            tests/out/bench/smoke)
# Environment (the full form; --smoke ignores the LOFI_BENCH_ ones):
#   LOFI_BENCH_ROUNDS (3), LOFI_BENCH_RUNTIME (seconds per job, 5),
#   LOFI_BENCH_RAMP (seconds before measuring, 1), LOFI_BENCH_SIZE (the
#   backing file, 512M), LOFI_BENCH_STORES ("tmpfs ext4"), LOFI_BENCH_JOBS
#   (all six), LOFI_BENCH_TARGETS (all five), LOFI_BENCH_COMPRESSED (the
#   algorithms of the compressed pass, "gzip lzma zstd lz4"; empty: none),
#   LOFI_BENCH_COMPRESSED_SIZE (its data, 64M), LOFI_BENCH_KDIR (another
#   kernel build tree instead of the benchmark kernel), and the VM runner's
#   LOFI_KVM=1, LOFI_VM_CPUS (2), LOFI_VM_MEMORY (2G).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

all_jobs="randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd32 seqread-1m-qd8 seqwrite-1m-qd8 randrw-16k-qd16"
all_targets="raw loop loop-dio lofi lofi-dio"
# The algorithms of the compressed pass (targets lofi-ALG next to lofi).
all_compressed="gzip lzma zstd lz4"
known_compressed="gzip gzip-6 gzip-9 lzma zstd lz4"
# The targets that must have a figure in the smoke form; loop-dio may be
# n/a (loop refusing direct I/O on the backing file).
smoke_required="raw loop lofi lofi-dio"

smoke=0
out=
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1; shift ;;
	--out) out=$2; shift 2 ;;
	*) die "unknown argument $1" "usage: scripts/bench.sh [--smoke] [--out DIR]" ;;
	esac
done

if [ $smoke = 1 ]; then
	rounds=1 runtime=1 ramp=0 size=64M stores=tmpfs
	jobs="randread-4k-qd1 seqwrite-1m-qd8"
	targets=$all_targets
	compressed=lz4 compressed_size=16M
else
	rounds=${LOFI_BENCH_ROUNDS:-3}
	runtime=${LOFI_BENCH_RUNTIME:-5}
	ramp=${LOFI_BENCH_RAMP:-1}
	size=${LOFI_BENCH_SIZE:-512M}
	stores=${LOFI_BENCH_STORES:-tmpfs ext4}
	jobs=${LOFI_BENCH_JOBS:-$all_jobs}
	targets=${LOFI_BENCH_TARGETS:-$all_targets}
	compressed=${LOFI_BENCH_COMPRESSED-$all_compressed}
	compressed_size=${LOFI_BENCH_COMPRESSED_SIZE:-64M}
fi
for v in rounds runtime; do
	case ${!v} in '' | *[!0-9]* | 0) die "LOFI_BENCH_${v^^} wants a positive number, not '${!v}'" ;; esac
done
case $ramp in '' | *[!0-9]*) die "LOFI_BENCH_RAMP wants a number of seconds, not '$ramp'" ;; esac
size_bytes=$(numfmt --from=iec "$size" 2>/dev/null) || die "LOFI_BENCH_SIZE=$size is not a size (512M, 1G...)"
[ "$size_bytes" -ge $((16 << 20)) ] && [ $((size_bytes % (1 << 20))) -eq 0 ] ||
	die "LOFI_BENCH_SIZE=$size: want a whole number of MiB, at least 16M"
for s in $stores; do
	case $s in tmpfs | ext4) ;; *) die "unknown store $s in LOFI_BENCH_STORES (tmpfs, ext4)" ;; esac
done
for j in $jobs; do
	case " $all_jobs " in *" $j "*) ;; *) die "unknown job $j in LOFI_BENCH_JOBS" "jobs: $all_jobs" ;; esac
done
for t in $targets; do
	case " $all_targets " in *" $t "*) ;; *) die "unknown target $t in LOFI_BENCH_TARGETS" "targets: $all_targets" ;; esac
done
for a in $compressed; do
	case " $known_compressed " in *" $a "*) ;; *) die "unknown algorithm $a in LOFI_BENCH_COMPRESSED" "algorithms: $known_compressed" ;; esac
done
compressed_bytes=$(numfmt --from=iec "$compressed_size" 2>/dev/null) && [ $((compressed_bytes % 512)) -eq 0 ] ||
	die "LOFI_BENCH_COMPRESSED_SIZE=$compressed_size is not a size in whole sectors (64M...)"


bench_root=$LOFI_ROOT/tests/out/bench
mkdir -p "$bench_root"
if [ -z "$out" ]; then
	if [ $smoke = 1 ]; then out=$bench_root/smoke; else out=$bench_root/run-$(date +%Y%m%d-%H%M%S); fi
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The kernel, the chart's matplotlib and, for the benchmark kernel, lofi.ko
# built against it.
"$LOFI_ROOT/scripts/provision.sh" --plot-tools
if [ $smoke = 1 ]; then
	KDIR=${KDIR:-$("$LOFI_ROOT/scripts/provision.sh")}
	# tests/vm-run.sh builds the work tree's lofi.ko against the test
	# kernel, unless LOFI_KO names one already built against it (make
	# check builds it once for all its VM stages).
else
	# One full benchmark at a time in a work tree: they share the module copy.
	exec 7>"$bench_root/.lock"
	flock -n 7 || die "another benchmark runs in this work tree" "wait for it to finish"
	KDIR=${LOFI_BENCH_KDIR:-$("$LOFI_ROOT/scripts/provision.sh" --bench)}
	kernel_build_env
	mod=$bench_root/module
	log "building lofi.ko against $(basename "$KDIR") in $mod"
	rm -rf "$mod"
	mkdir -p "$mod"
	(cd "$LOFI_ROOT" && git ls-files --cached --others --exclude-standard Kbuild drivers/block/lofi include/uapi |
		while read -r f; do [ -f "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$mod")
	KDIR=$KDIR "$LOFI_ROOT/scripts/build-module.sh" "${mod#"$LOFI_ROOT"/}" >/dev/null 2>"$out/module-build.log" || {
		tail -n 30 "$out/module-build.log" >&2
		die "could not build lofi.ko against $KDIR" "see $out/module-build.log"
	}
	export LOFI_KO=$mod/drivers/block/lofi/lofi.ko
	[ -f "$LOFI_KO" ] || die "the module build left no $LOFI_KO"
fi
export KDIR

# The settings, for the guest half; its results come back in the same
# directory (shared read-write with the guest).
share=$out/share
rm -rf "$share" "$out/vm"
mkdir -p "$share"
cat >"$share/bench.env" <<EOF
BENCH_STORES='$stores'
BENCH_JOBS='$jobs'
BENCH_TARGETS='$targets'
BENCH_ROUNDS=$rounds
BENCH_RUNTIME=$runtime
BENCH_RAMP=$ramp
BENCH_SIZE=$size_bytes
BENCH_COMPRESSED='$compressed'
BENCH_COMPRESSED_SIZE=$compressed_bytes
EOF
export LOFI_VM_SHARE=$share

# ext4 lives on a disk of its own: a sparse raw file outside the clone.
disk=
unset LOFI_VM_DISK
case " $stores " in *" ext4 "*)
	mkdir -p "$LOFI_CACHE/bench"
	disk=$LOFI_CACHE/bench/disk-$$.img
	rm -f "$disk"
	truncate -s $((size_bytes * 5 / 4 + (256 << 20))) "$disk"
	export LOFI_VM_DISK=$disk
	;;
esac
trap '[ -z "$disk" ] || rm -f "$disk"' EXIT

# Time limits from the number of runs: each costs its runtime and ramp and
# about a second more; each pass (two a round and store) the setup and
# fio's start, some seconds under TCG.  The limits are generous: on a host
# busy with other guests everything, the boot included, can take several
# times as long.
n_stores=$(wc -w <<<"$stores")
n_runs=$((n_stores * $(wc -w <<<"$jobs") * $(wc -w <<<"$targets") * rounds))
# The compressed pass: its runs, and compressing its data under TCG.
n_alg=$(wc -w <<<"$compressed")
n_runs=$((n_runs + (n_alg > 0 ? (n_alg + 1) * rounds * $(tr ' ' '\n' <<<"$jobs" | grep -c read || true) : 0)))
estimate=$((n_runs * (runtime + ramp + 1) + n_stores * rounds * 2 * 15 + n_stores * (size_bytes >> 20) / 8 + 60 + n_alg * (compressed_bytes >> 20) * 4))
export LOFI_TEST_TIMEOUT=$((estimate * 3 + 600))
vm_timeout=$((LOFI_TEST_TIMEOUT + 900))

{
	echo "kdir $(basename "$KDIR")"
	echo "kvm ${LOFI_KVM:-0}"
	echo "vm_cpus ${LOFI_VM_CPUS:-2}"
	echo "vm_memory ${LOFI_VM_MEMORY:-2G}"
	echo "host_cpu $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "host_cpus $(nproc)"
	echo "commit $(git -C "$LOFI_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$LOFI_ROOT" diff --quiet HEAD 2>/dev/null || echo -dirty)"
} >"$out/host.txt"

log "benchmark$([ $smoke = 0 ] || echo " (smoke)"): $n_runs runs of ${runtime}s (+${ramp}s ramp) on $(basename "$KDIR"), about $(((estimate + 59) / 60)) minute(s) after the boot; results in $out"
# Progress, from the guest's list of runs (shared with the host).
progress() {
	local done_runs last=-1
	while sleep 60; do
		done_runs=$(wc -l 2>/dev/null <"$share/runs.tsv" || echo 0)
		[ "$done_runs" = "$last" ] || log "$done_runs of $n_runs runs done"
		last=$done_runs
	done
}
progress &
progress_pid=$!
trap 'kill "$progress_pid" 2>/dev/null || true; [ -z "$disk" ] || rm -f "$disk"' EXIT
vm_status=0
"$LOFI_ROOT/tests/vm-run.sh" --timeout "$vm_timeout" --out "$out/vm" bench >"$out/vm-run.log" 2>&1 || vm_status=$?
kill "$progress_pid" 2>/dev/null || true

# show_vm_failure: why tests/vm-run.sh failed, from its log: its FAIL lines
# and what it quoted, or the log's tail when it stopped before judging.
show_vm_failure() {
	if grep -q '^FAIL ' "$out/vm-run.log"; then
		grep -E '^(FAIL |    )' "$out/vm-run.log" | head -n 30 | sed 's/^/    /'
	else
		tail -n 15 "$out/vm-run.log" | sed 's/^/    /'
	fi
}

report_args=(--share "$share" --out "$out" --host "$out/host.txt")
[ $smoke = 0 ] || report_args+=(--smoke "$smoke_required")
report_status=0
"$LOFI_VENV/bin/python" "$LOFI_ROOT/scripts/bench-report.py" "${report_args[@]}" >"$out/report.log" 2>&1 || report_status=$?

if [ $smoke = 1 ]; then
	# Only the verdicts below count: vm-run's own PASS/FAIL lines stay in its log.
	grep -vE '^(PASS|FAIL) ' "$out/report.log" || true
	{
		if [ $vm_status -eq 0 ]; then
			echo "PASS bench-smoke-vm (guest: $(grep -m1 '^benchmark done' "$out/vm/bench.log" 2>/dev/null || echo "?"))"
		else
			echo "FAIL bench-smoke-vm (tests/vm-run.sh exit status $vm_status; log: $out/vm-run.log)"
			show_vm_failure
		fi
		grep -E '^(PASS|FAIL) ' "$out/report.log" || echo "FAIL bench-smoke-report (bench-report.py exit status $report_status; log: $out/report.log)"
	} >"$out/verdicts"
	cat "$out/verdicts"
	passed=$(grep -c '^PASS ' "$out/verdicts" || true)
	failed=$(grep -c '^FAIL ' "$out/verdicts" || true)
	echo "bench-smoke results: $out"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
fi

cat "$out/report.log"
[ "$(dirname "$out")" != "$bench_root" ] || ln -sfn "$(basename "$out")" "$bench_root/latest"
if [ $vm_status -ne 0 ]; then
	log "the guest run failed (tests/vm-run.sh exit status $vm_status): the figures above may be incomplete"
	show_vm_failure >&2
fi
log "table: $out/table.txt, figures: $out/results.json, chart: $out/chart.png"
[ $vm_status -eq 0 ] && [ $report_status -eq 0 ]
