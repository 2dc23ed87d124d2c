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

# stages_summary: the closing line; returns non-zero on any failure.
stages_summary() {
	echo "$total_pass passed, $total_fail failed"
	[ "$total_fail" -eq 0 ]
}
