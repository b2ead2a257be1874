// QEMU's display refreshes become vdistream's frames, with the project's test guest dragging a
// window at 30 fps under QEMU 7.2 (pixels by value) and QEMU 10 (its surface shared as a memfd):
// the several band updates QEMU sends per refresh are one frame, so there is about one frame per
// frame the guest drew; each frame's barcode is one the guest finished, in order; and only the
// tiles whose pixels changed are written (by value) or copied into the mirror (shared memory),
// not the whole scanline bands QEMU names. Counts, not times: nothing here bounds a duration.
#include <catch2/catch.hpp>

#include <mutex>
#include <optional>
#include <vector>

#include "benchmarks/guest_vm.hpp"
#include "capture/qemu/qemu_source.hpp"
#include "capture/synthetic/barcode.hpp"
#include "core/clock.hpp"
#include "core/mapped_buffer.hpp"
#include "fixtures/guest.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

struct Seen {
  int64_t captured_ns = 0;
  std::optional<uint32_t> barcode;
  core::Rect bounds;
};

// Every frame the source gave, with the barcode it shows (read on the source's thread, before
// the next refresh can change the picture).
class FrameLog {
 public:
  capture::SourceCallbacks callbacks() {
    capture::SourceCallbacks cb;
    cb.on_frame = [this](core::Frame frame) {
      Seen seen{frame.timestamps.captured_ns, std::nullopt, frame.damage.bounds()};
      if (auto map = mappings_.get(*frame.buffer)) {
        core::MappedBuffer::CpuAccess access(**map);
        seen.barcode = capture::Barcode::read_xrgb((*map)->data(), (*map)->pitch(), frame.width(), frame.height());
      }
      std::lock_guard lock(mutex_);
      frames_.push_back(seen);
    };
    return cb;
  }
  std::vector<Seen> frames() {
    std::lock_guard lock(mutex_);
    return frames_;
  }

 private:
  core::MappingCache mappings_{2};
  std::mutex mutex_;
  std::vector<Seen> frames_;
};

void check_refreshes(bench::Qemu qemu, int bpp) {
  bench::GuestVmOptions options;
  options.qemu = qemu;
  options.width = 1280;
  options.height = 720;
  options.bpp = bpp;
  options.workload = "window-drag";
  options.fps = 30;
  auto vm = test::boot_guest(options);

  capture::qemu::QemuSourceConfig config;
  config.target = vm->display_target();
  config.name = "refresh";
  auto source = capture::qemu::QemuSource::create(config);
  REQUIRE(source.ok());
  FrameLog log;
  REQUIRE((*source)->start(log.callbacks()).ok());
  // Past the boot's mode switch and the first whole pictures.
  REQUIRE(vm->wait_frame_after(0, core::monotonic_now_ns() + 3'000'000'000, 20s));
  const capture::qemu::ListenerStats before = (*source)->listener_stats();
  const int64_t t0 = core::monotonic_now_ns();
  REQUIRE(vm->wait_frame_after(0, t0 + 8'000'000'000, 30s));
  const int64_t t1 = core::monotonic_now_ns();
  const capture::qemu::ListenerStats after = (*source)->listener_stats();
  (*source)->stop();

  uint64_t drawn = 0, frames = 0, unread = 0;
  for (const auto& f : vm->frames())
    if (f.arrival_ns >= t0 && f.arrival_ns < t1) ++drawn;
  std::optional<uint32_t> last;
  int64_t last_ns = 0;
  uint64_t split = 0, repeated = 0;  // frames < 10 ms after the previous one; frames showing its barcode again
  std::vector<std::pair<uint32_t, uint32_t>> backwards;
  for (const Seen& s : log.frames()) {
    if (s.captured_ns < t0 || s.captured_ns >= t1) continue;
    ++frames;
    if (last_ns && s.captured_ns - last_ns < 10'000'000) ++split;
    last_ns = s.captured_ns;
    if (!s.barcode) {
      ++unread;
      continue;
    }
    if (last && *s.barcode < *last) backwards.emplace_back(*last, *s.barcode);
    if (last && *s.barcode == *last) ++repeated;
    last = s.barcode;
  }
  const uint64_t messages = after.display_messages - before.display_messages;
  const uint64_t update_bytes = after.update_bytes - before.update_bytes;
  const uint64_t written = qemu == bench::Qemu::V10 && bpp == 24 ? after.mirror_bytes - before.mirror_bytes
                                                                   : after.bytes_written - before.bytes_written;
  INFO(bench::qemu_name(qemu) << " " << bpp << " bpp (" << after.scanout_kind << "): the guest drew " << drawn
                              << " frames, the source gave " << frames << " from " << messages
                              << " display messages; " << written << " of " << update_bytes
                              << " bytes QEMU named were changed tiles; " << unread << " frames without a barcode; "
                              << split << " frames within 10 ms of the previous one, " << repeated
                              << " showing the previous one's barcode; quiet period "
                              << double(after.refresh_quiet_ns) / 1e6 << " ms");
  REQUIRE(drawn > 100);  // 8 s at 30 fps, whatever the load
  // One frame per refresh: the Updates of a refresh are merged (about two per refresh here: the
  // barcode's band and the window's), and a refresh is rarely split in two (a gap inside it
  // longer than the learnt quiet period): frames closer than 10 ms (a third of QEMU's refresh
  // period) are such splits.
  // About one frame per guest frame. Under TCG the guest's copy into video memory takes long
  // enough that QEMU's refresh catches it mid-copy in 4-8 % of frames (measured here; it shows
  // the previous barcode with part of the new window, and the rest comes with the next refresh:
  // QEMU's own SPICE gets the same two pictures). Those make the rest of the margin.
  // A refresh that catches the guest mid-way through copying the barcode itself shows none (a torn
  // barcode fails its check): once in 252 frames under ASan in CI, and once in 254 in the
  // optimised build in a later CI. Rare, never zero by design; never an older barcode after a
  // newer one (below).
  CHECK(double(unread) <= 0.02 * double(frames));
#if defined(__SANITIZE_ADDRESS__)
  // Counts that depend on timing are for the optimised build: under ASan this process takes the
  // CPU the TCG guest and QEMU's refresh need, QEMU's scan of a refresh grows gaps longer than
  // the quiet period's 6 ms ceiling, and refreshes split (1.27 frames per guest frame seen in CI).
  WARN("sanitizer build: " << double(frames) / double(drawn) << " frames per guest frame, " << split << " split");
#else
  CHECK(double(messages) > 1.5 * double(frames));
  CHECK(double(split) <= 0.05 * double(frames));
  CHECK(double(frames) <= 1.10 * double(drawn));
#endif
  CHECK(double(frames) >= 0.5 * double(drawn));
  // Every frame's barcode is one the guest finished, never an older one after a newer one.
  CHECK(backwards.empty());
  // VGA names whole scanlines; the dragged window is 40 % of the width.
  CHECK(update_bytes > 0);
  CHECK(double(written) < 0.7 * double(update_bytes));
  if (qemu == bench::Qemu::V10 && bpp == 24) CHECK(after.pixel_bytes_received == before.pixel_bytes_received);
}

}  // namespace

TEST_CASE("QEMU 7.2's band updates of each refresh become one frame with only its changed tiles written", "[serial]") {
  check_refreshes(bench::Qemu::Host72, 32);
}

TEST_CASE("QEMU 10's shared surface gives one frame per refresh with only its changed tiles copied", "[serial]") {
  check_refreshes(bench::Qemu::V10, 24);
}
