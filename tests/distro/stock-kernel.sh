#!/usr/bin/env bash
# The stock-kernel test: lofi installed with `make install-distro` on a
# Debian trixie system with trixie-backports' Rust-enabled kernel, then
# that very kernel image (Debian's, unmodified) booted under QEMU with
# Debian's initramfs, where lofi is loaded, used and removed.
#
#   1. the trixie environment (tests/distro/trixie-env.sh, cached);
#   2. in it, with this tree copied in: `make install-distro` (the Rust
#      metadata is cached in the environment, so a warm run only builds);
#   3. install-distro's refusals, each condition forced: a kernel without
#      CONFIG_RUST, missing headers, a rustc that cannot be had, a source
#      package of another version, metadata that does not match the
#      kernel's exports;
#   4. Debian's vmlinuz booted (TCG) with the environment as its root file
#      system; tests/distro/guest-init.sh runs there; its results, the
#      taint and the kernel log are judged here;
#   5. `make uninstall-distro`, and nothing of lofi left installed.
#
# Prints "PASS name" / "FAIL name why" lines and "N passed, N failed";
# exits non-zero on any failure.  Output in tests/out/stock-kernel/.
set -uo pipefail
shopt -s inherit_errexit
. "$(dirname "$0")/../../scripts/lib/common.sh"
# shellcheck source=scripts/lib/debian.sh
. "$LOFI_ROOT/scripts/lib/debian.sh"

# One run at a time: runs share the environment and its boot image.
mkdir -p "$LOFI_CACHE/distro"
exec 9>"$LOFI_CACHE/distro/lock"
flock 9

out=$LOFI_ROOT/tests/out/stock-kernel
rm -rf "$out"
mkdir -p "$out"
passed=0
failed=0
report() {
	local verdict=$1 name=$2
	shift 2
	echo "$verdict stock-kernel/$name${*:+ $*}"
	if [ "$verdict" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
finish() {
	echo "stock-kernel: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

DEBIAN_PACKAGES="debootstrap qemu-system-x86 e2fsprogs" ensure_debian_packages

# 1. The environment.
t0=$(date +%s)
if ! env=$("$LOFI_ROOT/tests/distro/trixie-env.sh"); then
	report FAIL environment "could not make the trixie environment (see above)"
	finish
fi
root=$env/root
release=$(cat "$env/release")
report PASS environment "(Debian $release, $(($(date +%s) - t0))s)"
sed 's/^/    /' "$env/packages" | grep -v '^    list ' >"$out/packages"

# in_env CMD...: run CMD in the environment (proc and dev mounted for it
# only, in a private mount namespace: nothing outlives the command).
in_env() {
	unshare --mount --propagation private sh -c '
		root=$1; shift
		mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
			exec chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
				HOME=/root LANG=C.UTF-8 "$@"
	' sh "$root" "$@"
}

# The machine's own trust anchors (a proxy's CA, say), so that cargo in
# the environment reaches the crate registry as the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	in_env update-ca-certificates >/dev/null 2>&1 || true
fi

# 2. This tree, copied in (only what git knows: no build products), and
# install-distro as a user runs it.
src=/root/lofi-src
rm -rf "${root:?}$src"
mkdir -p "$root$src"
(cd "$LOFI_ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$root$src"
rm -f "$root/lib/modules/$release/updates/lofi.ko" "$root/usr/local/sbin/lofiadm"
t0=$(date +%s)
if in_env make -C "$src" install-distro LOFI_KERNEL_RELEASE="$release" >"$out/install-distro.log" 2>&1; then
	report PASS install-distro "($(($(date +%s) - t0))s, $(grep -o 'matches all [0-9]* Rust exports' "$out/install-distro.log"))"
else
	report FAIL install-distro "make install-distro failed in the trixie environment; last lines:"
	tail -n 30 "$out/install-distro.log" | sed 's/^/    /'
	finish
fi
vermagic=$(in_env modinfo -F vermagic "/lib/modules/$release/updates/lofi.ko" 2>&1)
if [[ "$vermagic" == "$release "* ]] && [ -x "$root/usr/local/sbin/lofiadm" ] &&
	[ -f "$root/usr/local/share/man/man8/lofiadm.8" ] && [ -f "$root/etc/udev/rules.d/60-lofi.rules" ] &&
	grep -q "updates/lofi.ko" "$root/lib/modules/$release/modules.dep"; then
	report PASS installed-files "(vermagic $vermagic; lofiadm, lofiadm.8, 60-lofi.rules; depmod ran)"
else
	report FAIL installed-files "vermagic '$vermagic', or lofiadm, its man page, the udev rule or modules.dep missing"
fi
rustc_used=$(sed -n 's/^\[lofi\] toolchain: \(rustc [0-9.]*\).*/\1/p' "$out/install-distro.log")
report PASS "built-with-${rustc_used// /-}" "(Debian's compiler; the VM suites build with $(rustc --version | awk '{print $1, $2}'))"

# 3. The refusals.  Fake headers are copies of the real build directory
# beside it (its relative links still resolve) with one thing changed.
hdr_real=$(readlink -f "$root/lib/modules/$release/build")
fake_headers() {
	local name=$1 fake
	fake=$root/usr/src/lofi-fake-$name
	rm -rf "$fake"
	cp -a "$hdr_real" "$fake"
	echo "$fake"
}
# refusal NAME EXPECTED-TEXT ENV...: install-distro must fail, saying EXPECTED-TEXT.
refusal() {
	local name=$1 want=$2 log=$out/refusal-$1.log
	shift 2
	if in_env env LOFI_KERNEL_RELEASE="$release" "$@" bash "$src/scripts/install-distro.sh" >"$log" 2>&1; then
		report FAIL "refuses-$name" "install-distro succeeded"
	elif grep -qF "$want" "$log"; then
		report PASS "refuses-$name" "($(grep -m1 'error:' "$log" | sed 's/^\[lofi\] error: //' | cut -c1-110))"
	else
		report FAIL "refuses-$name" "failed without saying '$want':"
		tail -n 5 "$log" | sed 's/^/    /'
	fi
}
fake=$(fake_headers norust)
sed -i 's/^CONFIG_RUST=y$/# CONFIG_RUST is not set/' "$fake/.config"
refusal no-rust "built without CONFIG_RUST" LOFI_KERNEL_HEADERS="${fake#"$root"}" LOFI_KERNEL_VERSION=x
refusal no-headers "no kernel headers for 7.3.99-lofi-absent" LOFI_KERNEL_RELEASE=7.3.99-lofi-absent
fake=$(fake_headers oldrustc)
sed -i 's/^CONFIG_RUSTC_VERSION_TEXT=.*/CONFIG_RUSTC_VERSION_TEXT="rustc 1.78.0 (9b00956e5 2024-04-29)"/' "$fake/.config"
refusal no-rustc "no such rustc is installed or offered" LOFI_KERNEL_HEADERS="${fake#"$root"}" LOFI_KERNEL_VERSION=x
kver=$(in_env dpkg-query -W -f='${Version}' "linux-headers-$release")
refusal source-version "but the archive offers linux-source" LOFI_KERNEL_VERSION="${kver/-1/-0}"
fake=$(fake_headers symvers)
# One Rust export under another crate hash: what a kernel built by another
# compiler build or configuration looks like.
awk -F'\t' '!done && $2 ~ /^_R.*Cs[0-9A-Za-z]+_6kernel/ { sub(/Cs[0-9A-Za-z]+_6kernel/, "CsLOFIMISMATCH_6kernel", $2); done = 1 } { print }' \
	OFS='\t' "$hdr_real/Module.symvers" >"$fake/Module.symvers"
refusal metadata-mismatch "does not match the running kernel's exports" \
	LOFI_KERNEL_HEADERS="${fake#"$root"}" LOFI_KERNEL_VERSION="$kver"
rm -rf "$root"/usr/src/lofi-fake-*
# The refusals must leave the real installation in place.
[ -f "$root/lib/modules/$release/updates/lofi.ko" ] ||
	report FAIL refusals-keep-install "a refused run removed the installed lofi.ko"

# 4. Debian's kernel booted with the environment as its root file system.
# The image holds the environment without what only building needs.
stage=$LOFI_CACHE/distro/boot-root
rm -rf "$stage"
cp -al "$root" "$stage"
rm -rf "$stage"/usr/src "$stage"/root/.cache "$stage"/root/lofi-src "$stage"/var/cache/apt \
	"$stage"/usr/lib/rustlib "$stage"/usr/lib/llvm-* "$stage"/usr/share/doc "$stage"/usr/share/locale \
	"$stage"/var/lib/apt/lists
mkdir -p "$stage/lofi-test"
install -m 0755 "$LOFI_ROOT/tests/distro/guest-init.sh" "$stage/lofi-test/init"
size_mb=$(($(du -sm "$stage" | cut -f1) + 256))
rootimg=$LOFI_CACHE/distro/boot-root.img
rm -f "$rootimg"
truncate -s "${size_mb}M" "$rootimg"
if ! run_logged "$out/mkfs.log" mkfs.ext4 -q -F -L lofi-root -d "$stage" "$rootimg"; then
	report FAIL root-image "mkfs.ext4 -d of the environment failed"
	finish
fi
rm -rf "$stage"
t0=$(date +%s)
timeout 900 qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -display none -no-reboot \
	-kernel "$root/boot/vmlinuz-$release" -initrd "$root/boot/initrd.img-$release" \
	-append "root=/dev/vda rw console=ttyS0 panic=-1 init=/lofi-test/init -- $release" \
	-drive "file=$rootimg,format=raw,if=virtio" -serial "file:$out/console.log" \
	-monitor none >"$out/qemu.log" 2>&1
qemu_status=$?
boot_s=$(($(date +%s) - t0))
rm -f "$rootimg"
tr -d '\r' <"$out/console.log" >"$out/console.txt"
if ! grep -q '^LOFI-GUEST ' "$out/console.txt"; then
	report FAIL boot "Debian's kernel did not reach the test (qemu status $qemu_status, ${boot_s}s); console tail:"
	tail -n 20 "$out/console.txt" | sed 's/^/    /'
	finish
fi
report PASS boot "($(sed -n 's/^LOFI-GUEST \([^ ]*\).*/\1/p' "$out/console.txt"), guest run ${boot_s}s)"
while read -r _ verdict name why; do
	report "$verdict" "guest/$name" "$why"
done < <(grep -E '^LOFI-RESULT (PASS|FAIL) ' "$out/console.txt")
grep -q '^LOFI-RESULT PASS module-gone' "$out/console.txt" ||
	report FAIL guest-complete "the guest did not run all its checks (see $out/console.txt)"

# The taint: out-of-tree (O, 4096) and unsigned (E, 8192) are what an
# installed, unsigned module brings; any other bit is a failure.
taint=$(sed -n 's/^LOFI-TAINT \([0-9]*\)$/\1/p' "$out/console.txt")
mod_taint=$(sed -n 's/^LOFI-MODULE-TAINT \(.*\)$/\1/p' "$out/console.txt")
if [ -n "$taint" ] && [ $((taint & ~(4096 | 8192))) -eq 0 ]; then
	report PASS taint "(kernel taint $taint, lofi's '$mod_taint': out-of-tree and unsigned, as expected)"
else
	report FAIL taint "kernel taint '${taint:-unknown}' has bits beyond out-of-tree and unsigned"
fi
sed -n '/^LOFI-DMESG-BEGIN$/,/^LOFI-DMESG-END$/p' "$out/console.txt" >"$out/dmesg.log"
sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' "$out/dmesg.log" | grep -E "$KERNEL_LOG_PROBLEMS" >"$out/kernel-problems" || true
if [ ! -s "$out/dmesg.log" ]; then
	report FAIL kernel-log "the guest printed no kernel log"
elif [ -s "$out/kernel-problems" ]; then
	report FAIL kernel-log "$(wc -l <"$out/kernel-problems") problem line(s):"
	head -n 20 "$out/kernel-problems" | sed 's/^/    /'
else
	report PASS kernel-log "(no warning, BUG, oops or lockdep report in $(wc -l <"$out/dmesg.log") lines)"
fi

# 5. make uninstall-distro removes what was installed (with a scratch
# cache, so that the environment's prepared metadata survives it).
if in_env make -C "$src" uninstall-distro LOFI_KERNEL_RELEASE="$release" LOFI_CACHE=/tmp/lofi-uninstall \
	>"$out/uninstall-distro.log" 2>&1 &&
	[ ! -e "$root/lib/modules/$release/updates/lofi.ko" ] && [ ! -e "$root/usr/local/sbin/lofiadm" ] &&
	[ ! -e "$root/usr/local/share/man/man8/lofiadm.8" ] && [ ! -e "$root/etc/udev/rules.d/60-lofi.rules" ] &&
	! grep -q "lofi.ko" "$root/lib/modules/$release/modules.dep"; then
	report PASS uninstall-distro "(module, lofiadm, man page and udev rule gone; depmod ran)"
else
	report FAIL uninstall-distro "make uninstall-distro left files behind or failed (see $out/uninstall-distro.log)"
fi
finish
