#!/usr/bin/env bash
# Install what lofi's build and tests need on a Debian 12 machine, and build
# the test kernel if no cached build matches the current inputs.  Idempotent:
# a second run with nothing changed does nothing and takes a second.
#
# usage: scripts/provision.sh [--print-source | --minimal | --bench | --plot-tools]
# Prints the kernel build directory (KDIR) on stdout, with --print-source
# the kernel source tree, with --minimal the prepared (not built) tree of
# the minimal configuration (scripts/kconfig/lofi-minimal.config), made if
# missing instead of the test kernel; with --bench the benchmark kernel
# (scripts/kconfig/lofi-bench.config), built if missing instead of the test
# kernel, and matplotlib for the benchmark's chart; with --plot-tools only
# matplotlib, printing nothing.  Progress goes to stderr.
# Environment: LOFI_CACHE (cache location, default ~/.cache/lofi),
# LOFI_APT_REFRESH=1 (refetch Debian package lists and the kernel source).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$LOFI_ROOT/scripts/lib/debian.sh"
. "$LOFI_ROOT/scripts/lib/toolchain.sh"
. "$LOFI_ROOT/scripts/lib/kernel.sh"

mkdir -p "$LOFI_CACHE"
# One provisioning at a time per cache (parallel `make` runs share it).
exec 9>"$LOFI_CACHE/.lock"
flock 9
ensure_toolchain
case ${1:-} in
--print-source) kernel_source_tree "$(kernel_source_deb)" ;;
--minimal) ensure_prepared_kernel ;;
--plot-tools) ensure_plot_tools ;;
--bench)
	ensure_plot_tools
	deb=$(kernel_source_deb)
	src=$(kernel_source_tree "$deb")
	# The benchmark kernel builds under a lock of its own: its ten-odd
	# minutes must not hold up the provisioning of test runs.
	exec 9>&-
	exec 8>"$LOFI_CACHE/.lock-bench"
	flock 8
	ensure_bench_kernel "$deb" "$src"
	;;
"") ensure_kernel ;;
*) die "unknown option $1" "usage: scripts/provision.sh [--print-source | --minimal | --bench | --plot-tools]" ;;
esac
