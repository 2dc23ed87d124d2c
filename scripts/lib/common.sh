# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this
# Shared helpers for lofi's scripts: paths, the cache layout, logging and
# error reporting.  Source it; it defines functions and variables only.

LOFI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/versions.env
. "$LOFI_ROOT/scripts/versions.env"

# Everything expensive lives outside the clone so that a fresh clone (as CI
# uses) reuses it.  LOFI_CACHE overrides the location.
LOFI_CACHE=${LOFI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lofi}
LOFI_TOOLS=$LOFI_CACHE/tools
LOFI_DOWNLOADS=$LOFI_CACHE/downloads
LOFI_KERNELS=$LOFI_CACHE/kernel

log() { printf '[lofi] %s\n' "$*" >&2; }

# die MESSAGE [HINT]: print what failed and what to do about it, then exit 1.
die() {
	printf '[lofi] error: %s\n' "$1" >&2
	[ $# -lt 2 ] || printf '[lofi]   what to do: %s\n' "$2" >&2
	exit 1
}

# run_logged LOGFILE CMD...: run CMD with its output in LOGFILE; on failure
# show the log's tail and the command so that the cause is visible.
run_logged() {
	local logfile=$1
	shift
	mkdir -p "$(dirname "$logfile")"
	if ! "$@" >"$logfile" 2>&1; then
		printf '[lofi] error: command failed: %s\n' "$*" >&2
		printf '[lofi] last lines of %s:\n' "$logfile" >&2
		tail -n 40 "$logfile" | sed 's/^/    /' >&2
		return 1
	fi
}

# Run as root, or through sudo when not root.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root for: $*" "run as root or install sudo"
	fi
}

rustc_version() { rustc --version | awk '{print $2}'; }

# The Python virtual environment holding libclang and virtme-ng.
LOFI_VENV=$LOFI_TOOLS/venv-py
LOFI_BINDGEN_ROOT=$LOFI_TOOLS/bindgen-$BINDGEN_VERSION

libclang_dir() {
	local d
	for d in "$LOFI_VENV"/lib/python3*/site-packages/clang/native; do
		echo "$d"
		return
	done
}

# The environment that kernel and module builds need (bindgen, libclang,
# rust-src of the running rustc).
kernel_build_env() {
	local rs
	rs=$LOFI_TOOLS/rust-src-$(rustc_version)/usr/src/rustc-$(rustc_version)/library
	export PATH="$LOFI_BINDGEN_ROOT/bin:$LOFI_VENV/bin:$PATH"
	export LIBCLANG_PATH
	LIBCLANG_PATH=$(libclang_dir)
	export RUST_LIB_SRC=$rs
}

# print_figures FILE: the figures reliability scenarios reported (lines
# "SCENARIO KEY=VALUE..." written by tests/guest/lib.sh figure), as a table.
print_figures() {
	[ -s "$1" ] || return 0
	echo "figures:"
	awk '{ printf "    %-22s", $1; for (i = 2; i <= NF; i++) printf " %s", $i; printf "\n" }' "$1"
}

# What a guest kernel log must not contain (tests/vm-run.sh and
# tests/distro/stock-kernel.sh): warnings, BUGs, oopses, lockdep and RCU
# reports, sleeping in atomic context, Rust panics, leaks, hung tasks,
# failed KUnit cases.
KERNEL_LOG_PROBLEMS='WARNING:|BUG:|Oops|Kernel panic|possible circular locking|inconsistent lock state|possible recursive locking|suspicious RCU usage|sleeping function called from invalid context|Call Trace|rust_panic|panicked at|kmemleak: [0-9]+ new suspected|blocked for more than|soft lockup|general protection fault|^ *not ok [0-9]+'
