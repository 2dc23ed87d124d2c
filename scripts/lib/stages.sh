# shellcheck shell=bash
# Stages of the aggregate test commands (tests/check.sh, tests/stress.sh):
# each stage is a command whose output has "PASS name" / "FAIL name why"
# lines; the totals end in one "N passed, N failed" line.  Source it after
# common.sh.

total_pass=0
total_fail=0

# stage NAME CMD...: run one stage, streaming its output, and count its
# PASS/FAIL lines (a stage that fails without a FAIL line counts as one).
stage() {
	local name=$1 status p f t0 out
	shift
	t0=$(date +%s)
	out=$(mktemp)
	echo "=== $name"
	"$@" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	p=$(grep -cE '^PASS ' "$out")
	f=$(grep -cE '^FAIL ' "$out")
	rm -f "$out"
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name (exit status $status)"
		f=1
	fi
	echo "=== $name: $p passed, $f failed, $(($(date +%s) - t0))s"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

# lane NAME FUNCTION [ARGS...]: run FUNCTION, a sequence of stage calls,
# in the background (no stdin), beside what the caller runs meanwhile; its
# output goes to tests/out/lane-NAME.log, and lanes_wait prints it and
# counts its results. Stages in different lanes must share no files.
lane_names=()
lane_pids=()
lane() {
	local name=$1 dir=$LOFI_ROOT/tests/out
	shift
	mkdir -p "$dir"
	rm -f "$dir/lane-$name.totals"
	(
		total_pass=0
		total_fail=0
		"$@"
		echo "$total_pass $total_fail" >"$dir/lane-$name.totals"
	) </dev/null >"$dir/lane-$name.log" 2>&1 &
	lane_names+=("$name")
	lane_pids+=($!)
	log "lane $name runs beside the next stages (output: tests/out/lane-$name.log, printed when it ends)"
}

# lanes_wait: wait for every lane, print its output and add its counts
# (a lane that ended without its counts counts as one failure).
lanes_wait() {
	local i name dir=$LOFI_ROOT/tests/out p f
	for i in "${!lane_pids[@]}"; do
		name=${lane_names[$i]}
		wait "${lane_pids[$i]}"
		cat "$dir/lane-$name.log"
		if read -r p f <"$dir/lane-$name.totals" 2>/dev/null; then
			total_pass=$((total_pass + p))
			total_fail=$((total_fail + f))
		else
			echo "FAIL lane-$name (ended without its results; see tests/out/lane-$name.log)"
			total_fail=$((total_fail + 1))
		fi
	done
	lane_names=()
	lane_pids=()
}

# stages_summary: the closing line; returns non-zero on any failure.
stages_summary() {
	echo "$total_pass passed, $total_fail failed"
	[ "$total_fail" -eq 0 ]
}
