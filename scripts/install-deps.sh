#!/usr/bin/env bash
# Installs every Debian 12 package vdistream builds, runs and tests with, then unpacks the test
# guest's kernel and QEMU 10 into /opt/vdistream-test (scripts/install-test-vm.sh).
# Idempotent and non-interactive: packages already present are not fetched again.
# Run as root (or with sudo available).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # core / capture
  libdrm-dev libglib2.0-dev
  # encode: FFmpeg (x264 inside libavcodec), libyuv, hardware APIs
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev
  libyuv-dev libx264-dev libvpl-dev libva-dev
  libopus-dev libswresample-dev  # audio: the guest's PCM resampled to 48 kHz and encoded once per desktop for WebRTC
  libffmpeg-nvenc-dev libegl-dev  # ffnvcodec and EGL headers: NVENC dlopen()s libcuda, libnvidia-encode, libEGL
  # spice
  libspice-server-dev libspice-protocol-dev libspice-client-glib-2.0-dev
  # transport: GStreamer webrtcbin, libsoup
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-nice gstreamer1.0-libav libsoup-3.0-dev
  # service: configuration, CLI, JSON, logging
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  # tests and benchmarks
  catch2 ffmpeg qemu-system-x86 dbus virt-viewer xvfb x11-apps imagemagick chromium openssl
  xclip  # the other X application in the remote-viewer clipboard test
  zlib1g-dev  # the VNC clipboard client of the real-QEMU clipboard test
  clang  # the libFuzzer harnesses (tests/fuzz): libFuzzer and its sanitizers come with clang
  gstreamer1.0-x  # ximagesink: remote-viewer shows SPICE stream mode through it (no sink, no picture)
  libx11-dev libxext-dev  # vdistream-bench spice --clients remote-viewer reads its Xvfb screen (Xlib, MIT-SHM)
  gnuplot-nox
  python3-prometheus-client  # the service tests parse /metrics with Prometheus's own parser
  coturn socat iproute2  # WebRTC through a TURN relay across network namespaces (test_webrtc_turn)
  # the test guest (tests/guest, scripts/install-test-vm.sh): a static busybox initramfs (cpio),
  # the kernel's modules picked with depmod/modprobe (kmod), and what QEMU 10's modules from
  # bookworm-backports link beyond QEMU 7.2's (virglrenderer, pipewire)
  busybox-static cpio kmod libvirglrenderer1 libpipewire-0.3-0
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The test guest's kernel and QEMU 10, unpacked (not installed) into /opt/vdistream-test.
"$(dirname "$0")/install-test-vm.sh"
