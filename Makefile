# lofi developer entry points.  See README.md.
#
#   make                build drivers/block/lofi/lofi.ko against the cached
#                       test kernel (provisioned on first use), or KDIR=...
#   make check          every test: host checks, KUnit and the VM suites
#   make run            boot a VM with lofi loaded and show it working
#   make vm             an interactive shell in the test VM
#   make kernel         install the toolchain and build the test kernel only
#   make intree         prove the in-tree Kconfig/Makefile hooks build
#   make clean          remove build products from the work tree

export KDIR

.PHONY: all modules check run vm kernel intree clean

all: modules

modules:
	@scripts/build-module.sh

check:
	@tests/check.sh

run:
	@scripts/run-demo.sh

vm:
	@scripts/vm-shell.sh

kernel:
	@scripts/provision.sh

intree:
	@scripts/intree-build.sh


clean:
	@git clean -fdqX -- drivers tests/selftest
