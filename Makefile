# lofi developer entry points.  See README.md.
#
#   make                build drivers/block/lofi/lofi.ko against the cached
#                       test kernel (provisioned on first use), or KDIR=...,
#                       and lofiadm (tools/lofiadm, with cargo)
#   make lofiadm        build lofiadm only: tools/lofiadm/target/release/lofiadm
#   make install        install lofi.ko, lofiadm and lofiadm.8 under
#                       DESTDIR (default: none) and PREFIX (/usr/local)
#   make install-distro build lofi for this Debian system's own Rust-enabled
#                       kernel and install it (scripts/install-distro.sh)
#   make uninstall-distro  remove what install-distro installed
#   make check          every test: host checks, KUnit and the VM suites
#   make stress         the long form of the reliability scenarios
#   make bench          compare lofi with loop (not a test): a table, JSON
#                       and a chart under tests/out/bench/ (scripts/bench.sh)
#   make bench-smoke    the ten-second form of the benchmark, on the test kernel
#   make run            boot a VM with lofi loaded and show it working
#   make vm             an interactive shell in the test VM
#   make kernel         install the toolchain and build the test kernel only
#   make intree         prove the in-tree Kconfig/Makefile hooks build
#   make clean          remove build products from the work tree

export KDIR

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
LOFIADM_DIR := tools/lofiadm

.PHONY: all modules lofiadm install install-distro uninstall-distro check stress bench bench-smoke run vm kernel intree clean

all: modules lofiadm

modules:
	@scripts/build-module.sh

# The target directory is named explicitly so that a CARGO_TARGET_DIR in
# the environment does not move the binary the VM tests and install use.
lofiadm:
	@$(CARGO) build --release --locked --quiet \
		--manifest-path $(LOFIADM_DIR)/Cargo.toml --target-dir $(LOFIADM_DIR)/target

install: modules lofiadm
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" scripts/install.sh

install-distro:
	@scripts/install-distro.sh

uninstall-distro:
	@scripts/install-distro.sh --remove

check:
	@tests/check.sh

stress:
	@tests/stress.sh

bench:
	@scripts/bench.sh

bench-smoke:
	@scripts/bench.sh --smoke

run:
	@scripts/run-demo.sh

vm:
	@scripts/vm-shell.sh

kernel:
	@scripts/provision.sh

intree:
	@scripts/intree-build.sh


clean:
	@git clean -fdqX -- drivers tests/selftest tools
