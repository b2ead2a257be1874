#!/usr/bin/env bash
# Builds the test guest's initramfs (cpio newc, gzip): the static busybox, init, vdt-guest and
# the kernel modules scripts/install-test-vm.sh kept under KERNEL_DIR.
#   build-initramfs.sh OUTPUT VDT_GUEST INIT KERNEL_DIR [BUSYBOX]
# Rewrites OUTPUT only when an input changed. Without KERNEL_DIR it warns and builds nothing:
# the tests that boot the guest then say to run ./scripts/install-deps.sh.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 OUTPUT VDT_GUEST INIT KERNEL_DIR [BUSYBOX]" >&2
  exit 2
fi
output=$1 guest=$2 init=$3 kernel_dir=$4 busybox=${5:-/bin/busybox}

if [ ! -f "$kernel_dir/release" ] || [ ! -f "$kernel_dir/vmlinuz" ]; then
  echo "build-initramfs: WARNING: no test-guest kernel in $kernel_dir; run ./scripts/install-deps.sh" \
    "(it runs scripts/install-test-vm.sh), then build again. $output is not built." >&2
  rm -f "$output" "$output.inputs"
  exit 0
fi
release=$(cat "$kernel_dir/release")
modules="$kernel_dir/lib/modules/$release"
[ -f "$modules/modules.dep" ] || { echo "build-initramfs: $modules/modules.dep is missing" >&2; exit 1; }
[ -x "$busybox" ] || { echo "build-initramfs: no $busybox (Debian package busybox-static)" >&2; exit 1; }
if ! (ldd "$busybox" 2>&1 || true) | grep -q 'not a dynamic executable'; then
  echo "build-initramfs: $busybox is not statically linked (install busybox-static, not busybox)" >&2
  exit 1
fi

# What goes in, by content: nothing changed, nothing rebuilt.
inputs=$( (sha256sum "$guest" "$init" "$busybox" "$0" && cd "$modules" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sed "s|  .*/|  |")
if [ -f "$output" ] && [ "$(cat "$output.inputs" 2>/dev/null)" = "$inputs" ]; then
  exit 0
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/vdt-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib/modules" "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp"
cp "$busybox" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp "$init" "$stage/init"
chmod 0755 "$stage/init"
cp "$guest" "$stage/bin/vdt-guest"
strip "$stage/bin/vdt-guest" 2>/dev/null || true
cp -a "$modules" "$stage/lib/modules/$release"

(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --reproducible -R 0:0 --quiet) | gzip -6n >"$output.tmp"
mv "$output.tmp" "$output"
echo "$inputs" >"$output.inputs"
echo "build-initramfs: $output ($(du -k "$output" | cut -f1) KiB, kernel $release)"
