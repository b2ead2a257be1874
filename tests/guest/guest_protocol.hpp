// What the project's test guest (vdt-guest in a busybox initramfs, tests/guest/) and the host
// side that runs it (benchmarks/guest_vm) agree on: kernel command-line keys, the lines the guest
// writes on its protocol serial port, where it echoes keys on screen, and the guest modes.
// Header-only and free of host libraries: the static guest binary includes it too.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "capture/synthetic/barcode.hpp"
#include "core/damage.hpp"

namespace vdistream::guest {

// Kernel command line (/proc/cmdline), each optional:
//   vdt.workload=NAME   head 0's synthetic workload (capture::parse_workload names), window-drag
//   vdt.workload1=NAME  head 1's, typing
//   vdt.fps=N           frames per second, 30 (1..240)
//   vdt.frames=N        the scenes stop advancing after N frames; 0 (default) = never
//   vdt.heads=1|2       2: head 0 on /dev/fb0, head 1 on /dev/fb1
//   vdt.tone=HZ,ON_MS,OFF_MS
//                       the PC speaker plays a square wave of HZ (20..8000) for ON_MS, is silent
//                       for OFF_MS, and so on (QEMU: -machine pcspk-audiodev=ID); none by default
//   vdt.record=1        init loads the HD Audio driver and the guest records from the first sound
//                       card's capture device (QEMU: -device intel-hda -device hda-duplex) all along
inline constexpr std::string_view kArgWorkload = "vdt.workload", kArgWorkload1 = "vdt.workload1",
                                  kArgFps = "vdt.fps", kArgFrames = "vdt.frames", kArgHeads = "vdt.heads",
                                  kArgTone = "vdt.tone", kArgRecord = "vdt.record";
inline constexpr int kMaxHeads = 2;

// The protocol port is the guest's /dev/ttyS1 (the host's second -serial), raw, one ASCII line
// per event ending in '\n':
//   READY <head> <width> <height> <bpp>      the head's framebuffer is mapped; frames follow
//   F <head> <barcode value> <drawn> <skipped>
//       frame finished: every pixel of it is in the framebuffer. <barcode value> is what
//       capture::Scene::barcode_value() gives for the frame (the barcode shows it modulo 2^24),
//       <drawn> counts this head's frames that changed something (this one included),
//       <skipped> the frame times the guest woke up too late for (it never draws a backlog).
//       Frames that change nothing get no line.
//   K <linux key code> <count>
//       a key went down (KEY_* of <linux/input-event-codes.h>); <count> counts presses since
//       boot. Written when the guest reads the key; its echo is drawn with the next frame.
//   A <hz> <count>
//       the PC speaker started playing <hz> (the PIT's real frequency, rounded to 0.01 Hz), the
//       <count>th tone since boot; "A 0 <count>" when that tone stopped
//   M <hz> <peak> <count>
//       with vdt.record: what the guest recorded in its <count>th half second (since boot) of
//       capture: the left channel's frequency from the time between its rising zero crossings
//       (0.01 Hz; 0 in silence) and its peak (0..32768 of s16)
//   E <message>                              the guest gave up; nothing follows
inline constexpr std::string_view kLineReady = "READY", kLineFrame = "F", kLineKey = "K", kLineTone = "A",
                                  kLineMicrophone = "M", kLineError = "E";

// The PC speaker's square wave comes from the PIT's channel 2 counting down this clock.
inline constexpr double kPitHz = 1193182.0;
constexpr uint32_t pit_divisor(double hz) { return uint32_t(kPitHz / hz + 0.5); }
constexpr double pit_tone_hz(double hz) { return kPitHz / pit_divisor(hz); }

// Key echo, on head 0 only: a second barcode (capture::Barcode, same size) in the strip right
// below the frame barcode, showing key_echo_value() of the latest key press (0 before the first).
// It covers whatever the workload draws there; everywhere else the guest's picture is exactly
// the synthetic source's. Read it with Barcode::read_xrgb(pixels + kKeyEchoStrip.y * pitch, ...).
inline constexpr core::Rect kKeyEchoStrip{0, capture::Barcode::kHeight, capture::Barcode::kWidth,
                                          capture::Barcode::kHeight};  // 576x16+0+16
constexpr uint32_t key_echo_value(uint32_t count, uint32_t code) { return ((count & 0xffff) << 8) | (code & 0xff); }
static_assert(kKeyEchoStrip.x == 0 && kKeyEchoStrip.y == 16 && kKeyEchoStrip.width == 576 && kKeyEchoStrip.height == 16);

// Guest modes: the kernel's vesafb takes the mode the VGA BIOS sets for vga=N (VESA mode + 0x200,
// SeaVGABIOS's numbering). Only these are offered: each has been seen to work.
struct GuestMode {
  int32_t width, height, bpp;
  uint16_t vga;
};
inline constexpr std::array<GuestMode, 4> kGuestModes{{
    {1280, 720, 24, 0x38e},
    {1280, 720, 32, 0x38f},
    {1920, 1080, 24, 0x391},
    {1920, 1080, 32, 0x392},
}};
constexpr std::optional<GuestMode> find_guest_mode(int32_t width, int32_t height, int32_t bpp) {
  for (const GuestMode& m : kGuestModes)
    if (m.width == width && m.height == height && m.bpp == bpp) return m;
  return std::nullopt;
}

}  // namespace vdistream::guest
