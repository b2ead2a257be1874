#!/usr/bin/env bash
# Unpacks what the project's test guest runs on into /opt/vdistream-test (or $VDISTREAM_TEST_VM_DIR):
#   kernel/    Debian 12's current kernel (the package linux-image-amd64 depends on): vmlinuz and
#              the few modules the guest loads (evdev; bochs and virtio-gpu; HD Audio to record),
#              with their dependencies and modules.dep made by depmod -b.
#   qemu-10/   QEMU 10 from bookworm-backports, unpacked with dpkg-deb -x, never installed: the
#              host's QEMU 7.2 in /usr/bin stays as it is, and the system's apt sources are not
#              touched (a private apt configuration in a temporary directory fetches it).
#              Run it as  QEMU_MODULE_DIR=DIR/usr/lib/x86_64-linux-gnu/qemu \
#                         DIR/usr/bin/qemu-system-x86_64 -L DIR/usr/share/qemu -L /usr/share/seabios ...
#              or through the wrapper bin/qemu-system-x86_64-10 that does exactly that.
# Idempotent: each part has a stamp file with the versions it holds and is left alone while they
# are current. The kernel is checked against the system's apt lists; QEMU 10 is fetched once and
# re-checked against bookworm-backports only with --refresh.
# Run as root (or with sudo available). Fails loudly when apt or the network fails.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-test-vm: run as root (sudo is not installed)" >&2; exit 1; }
  exec sudo --preserve-env=VDISTREAM_TEST_VM_DIR "$0" "$@"
fi

refresh=0
for arg in "$@"; do
  case "$arg" in
    --refresh) refresh=1 ;;
    -h | --help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      echo "Options: --refresh  also ask bookworm-backports whether a newer QEMU 10 is out"
      exit 0 ;;
    *) echo "install-test-vm: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

dest=${VDISTREAM_TEST_VM_DIR:-/opt/vdistream-test}
layout=1  # bump when what is unpacked changes, so existing installs are redone

# Modules the guest loads with modprobe; their dependencies come along (modprobe --show-depends).
guest_modules=(evdev bochs virtio-gpu virtio_pci snd-hda-intel snd-hda-codec-generic)
# QEMU 10 packages: the emulator, its firmware and keymaps, the UI modules (ui-dbus is in
# qemu-system-modules-opengl; -spice needs qemu-system-modules-spice).
qemu_packages=(qemu-system-x86 qemu-system-common qemu-system-data qemu-system-gui
  qemu-system-modules-opengl qemu-system-modules-spice)
# Modules of QEMU 10 that must load (every other module only warns when a library is missing).
qemu_required_modules=(ui-dbus ui-opengl ui-spice-core chardev-spice audio-spice hw-display-virtio-vga
  hw-display-virtio-gpu hw-display-virtio-gpu-pci hw-display-qxl)

say() { echo "install-test-vm: $*"; }
die() { echo "install-test-vm: ERROR: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb depmod modprobe ldd; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (install-deps.sh installs kmod for depmod and modprobe)"
done

work=$(mktemp -d /tmp/vdistream-test-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -p "$dest"

# apt-get download writes as the unprivileged _apt user when it can; give it the directory.
download_dir() {
  local dir=$1
  mkdir -p "$dir"
  if id _apt >/dev/null 2>&1; then chown _apt "$dir"; fi
}

stamp_of() { cat "$1/.stamp" 2>/dev/null || true; }

# Replaces $dest/$1 by the staged directory $2 (same file system: a rename, never half a tree).
commit_part() {
  local name=$1 staged=$2
  rm -rf "$dest/$name.old"
  if [ -e "$dest/$name" ]; then mv "$dest/$name" "$dest/$name.old"; fi
  mv "$staged" "$dest/$name"
  rm -rf "$dest/$name.old"
}

# ---------------------------------------------------------------- kernel
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
kernel_pkg=$(kernel_package)
if [ -z "$kernel_pkg" ]; then
  say "apt does not know linux-image-amd64 yet: apt-get update"
  apt-get update -qq || die "apt-get update failed (network?)"
  kernel_pkg=$(kernel_package)
fi
[ -n "$kernel_pkg" ] || die "cannot tell which kernel linux-image-amd64 depends on (apt-cache depends linux-image-amd64)"
kernel_version=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ {print $2}')
[ -n "$kernel_version" ] && [ "$kernel_version" != "(none)" ] || die "no candidate version of $kernel_pkg"
kernel_release=${kernel_pkg#linux-image-}
kernel_stamp="layout=$layout package=$kernel_pkg version=$kernel_version modules=${guest_modules[*]}"

if [ "$(stamp_of "$dest/kernel")" = "$kernel_stamp" ] && [ -f "$dest/kernel/vmlinuz" ]; then
  say "kernel up to date: $kernel_pkg $kernel_version"
else
  say "fetching $kernel_pkg $kernel_version"
  start=$(date +%s)
  download_dir "$work/kernel-deb"
  if ! (cd "$work/kernel-deb" && apt-get download -q "$kernel_pkg=$kernel_version"); then
    # Lists older than the archive name a kernel the mirror no longer has: read them again once.
    say "apt-get download failed; apt-get update and one more try"
    apt-get update -qq || die "apt-get update failed (network?)"
    new_pkg=$(kernel_package)
    new_version=$(apt-cache policy "$new_pkg" | awk '/Candidate:/ {print $2}')
    if [ "$new_pkg $new_version" != "$kernel_pkg $kernel_version" ]; then
      say "the current kernel is now $new_pkg $new_version: starting again"
      rm -rf "$work"
      exec "$0" "$@"
    fi
    (cd "$work/kernel-deb" && apt-get download -q "$kernel_pkg=$kernel_version") ||
      die "apt-get download $kernel_pkg=$kernel_version failed (network?)"
  fi
  dpkg-deb -x "$work"/kernel-deb/*.deb "$work/kernel-root" || die "dpkg-deb -x of $kernel_pkg failed"
  src="$work/kernel-root"
  [ -f "$src/boot/vmlinuz-$kernel_release" ] || die "$kernel_pkg has no /boot/vmlinuz-$kernel_release"
  depmod -b "$src" "$kernel_release" || die "depmod on the unpacked kernel failed"

  staged="$dest/.kernel.new"
  rm -rf "$staged"
  mkdir -p "$staged/lib/modules/$kernel_release"
  cp "$src/boot/vmlinuz-$kernel_release" "$staged/vmlinuz"
  cp "$src/boot/config-$kernel_release" "$staged/config"
  for f in modules.builtin modules.builtin.modinfo modules.order; do
    cp "$src/lib/modules/$kernel_release/$f" "$staged/lib/modules/$kernel_release/"
  done
  for module in "${guest_modules[@]}"; do
    lines=$(modprobe -d "$src" -S "$kernel_release" --show-depends "$module") ||
      die "module $module is not in $kernel_pkg"
    while read -r verb path _; do
      [ "$verb" = insmod ] || continue  # "builtin NAME" needs nothing
      relative=${path#"$src"/}
      mkdir -p "$staged/$(dirname "$relative")"
      cp "$path" "$staged/$relative"
    done <<<"$lines"
  done
  depmod -b "$staged" "$kernel_release" || die "depmod -b on the kept modules failed"
  echo "$kernel_release" >"$staged/release"
  echo "$kernel_stamp" >"$staged/.stamp"
  commit_part kernel "$staged"
  say "kernel $kernel_release: vmlinuz and $(find "$dest/kernel/lib" -name '*.ko' | wc -l) modules in $dest/kernel ($(($(date +%s) - start)) s)"
fi

# ---------------------------------------------------------------- QEMU 10
apt_private=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/sources.list.d"
  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
qemu_dir="$dest/qemu-10"

verify_qemu() {  # dir: ldd and a real start with -display dbus and -spice
  local dir=$1 missing bin="$1/usr/bin/qemu-system-x86_64" moddir="$1/usr/lib/x86_64-linux-gnu/qemu"
  missing=$(ldd "$bin" | grep 'not found' || true)
  [ -z "$missing" ] || die "QEMU 10 needs libraries Debian 12 has not installed here: $missing"
  for module in "${qemu_required_modules[@]}"; do
    [ -f "$moddir/$module.so" ] || die "QEMU 10 module $module.so is missing from $moddir"
    missing=$(ldd "$moddir/$module.so" | grep 'not found' || true)
    [ -z "$missing" ] || die "QEMU 10 module $module.so needs libraries that are not installed: $missing"
  done
  for so in "$moddir"/*.so; do
    missing=$(ldd "$so" | grep 'not found' || true)
    [ -z "$missing" ] || say "warning: $(basename "$so") will not load: $(echo "$missing" | tr -s ' \t\n' ' ')"
  done
  local sock="$work/spice.sock" out
  out=$(printf '{"execute":"qmp_capabilities"}\n{"execute":"query-spice"}\n{"execute":"quit"}\n' |
    timeout 30 env QEMU_MODULE_DIR="$moddir" "$bin" -L "$dir/usr/share/qemu" -L /usr/share/seabios \
      -machine pc -accel tcg -m 64 -nodefaults -device VGA -S \
      -display dbus,p2p=yes -spice "unix=on,addr=$sock,disable-ticketing=on" -qmp stdio 2>&1) ||
    die "QEMU 10 did not start with -display dbus,p2p=yes and -spice: $out"
  echo "$out" | grep -q '"enabled": true' || die "QEMU 10's SPICE is not enabled: $out"
}

write_wrapper() {  # dir
  mkdir -p "$1/bin"
  cat >"$1/bin/qemu-system-x86_64-10" <<EOF
#!/bin/sh
# QEMU 10 unpacked by scripts/install-test-vm.sh (not installed; the host's QEMU stays in /usr/bin).
exec env QEMU_MODULE_DIR="$qemu_dir/usr/lib/x86_64-linux-gnu/qemu" "$qemu_dir/usr/bin/qemu-system-x86_64" \\
  -L "$qemu_dir/usr/share/qemu" -L /usr/share/seabios "\$@"
EOF
  chmod 0755 "$1/bin/qemu-system-x86_64-10"
}

qemu_stamp_now=$(stamp_of "$qemu_dir")
if [ "$refresh" = 0 ] && [ "${qemu_stamp_now%% *}" = "layout=$layout" ] && [ -x "$qemu_dir/usr/bin/qemu-system-x86_64" ]; then
  say "QEMU 10 present: ${qemu_stamp_now#* } (--refresh checks bookworm-backports for a newer one)"
else
  start=$(date +%s)
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/sources.list.d"
  echo "deb http://deb.debian.org/debian bookworm-backports main" >"$work/apt/sources.list"
  say "reading bookworm-backports (private apt lists in $work, the system's sources untouched)"
  apt-get "${apt_private[@]}" update -qq || die "apt-get update of bookworm-backports failed (network?)"
  # The version bookworm-backports offers (not the installed 7.2).
  qemu_version=$(apt-cache "${apt_private[@]}" madison qemu-system-x86 | awk -F'|' '/bookworm-backports/ {gsub(/ /, "", $2); print $2; exit}')
  [ -n "$qemu_version" ] || die "bookworm-backports has no qemu-system-x86"
  case "$qemu_version" in 1:10.*) ;; *) die "bookworm-backports offers qemu-system-x86 $qemu_version, not QEMU 10" ;; esac
  qemu_stamp="layout=$layout qemu-system-x86=$qemu_version"
  if [ "$qemu_stamp_now" = "$qemu_stamp" ] && [ -x "$qemu_dir/usr/bin/qemu-system-x86_64" ]; then
    say "QEMU 10 up to date: $qemu_version"
  else
    say "fetching QEMU $qemu_version: ${qemu_packages[*]}"
    download_dir "$work/qemu-debs"
    specs=()
    for p in "${qemu_packages[@]}"; do specs+=("$p=$qemu_version"); done
    (cd "$work/qemu-debs" && apt-get "${apt_private[@]}" download -q "${specs[@]}") ||
      die "apt-get download of QEMU $qemu_version from bookworm-backports failed"
    staged="$dest/.qemu-10.new"
    rm -rf "$staged"
    for deb in "$work"/qemu-debs/*.deb; do
      dpkg-deb -x "$deb" "$staged" || die "dpkg-deb -x $deb failed"
    done
    verify_qemu "$staged"
    echo "$qemu_stamp" >"$staged/.stamp"
    commit_part qemu-10 "$staged"
    write_wrapper "$qemu_dir"
    say "QEMU $qemu_version unpacked into $qemu_dir ($(($(date +%s) - start)) s); -display dbus and -spice verified"
  fi
fi
