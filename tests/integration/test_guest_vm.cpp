// The project's test guest (tests/guest) booted in a real QEMU, 7.2 (the host's) and 10 (unpacked
// by scripts/install-test-vm.sh): its frames reach a capture::qemu::QemuSource with the barcodes
// the guest reported on its serial port, and keys sent through the source come back from the
// guest. Missing pieces fail with what to run (CI runs scripts/install-deps.sh first).
#include <catch2/catch.hpp>

#include <linux/input-event-codes.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "benchmarks/guest_vm.hpp"
#include "capture/qemu/qemu_source.hpp"
#include "capture/synthetic/barcode.hpp"
#include "core/clock.hpp"
#include "core/keymap.hpp"
#include "core/mapped_buffer.hpp"
#include "fixtures/guest.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "tests/guest/guest_protocol.hpp"

using namespace vdistream;
using namespace std::chrono_literals;
using bench::GuestVm;
using bench::Qemu;
using capture::Barcode;

namespace {

// The latest frame a source delivered, and how many.
class LatestFrame {
 public:
  capture::SourceCallbacks callbacks() {
    capture::SourceCallbacks cb;
    cb.on_frame = [this](core::Frame frame) {
      std::lock_guard lock(mutex_);
      latest_ = std::move(frame);
      ++count_;
      cv_.notify_all();
    };
    return cb;
  }
  // Until `pred(latest frame)` holds for a frame after the first `after`; false after `limit`.
  bool wait(const std::function<bool(const core::Frame&)>& pred, std::chrono::milliseconds limit, uint64_t after = 0) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return latest_.buffer && count_ > after && pred(latest_); });
  }
  uint64_t count() {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  core::Frame latest_;
  uint64_t count_ = 0;
};

// A barcode (capture::Barcode) whose top-left corner is at row `y`, column 0 of the frame.
std::optional<uint32_t> read_barcode(const core::Frame& frame, int32_t y) {
  auto map = core::MappedBuffer::map(*frame.buffer);
  if (!map.ok() || frame.height() < y + Barcode::kHeight) return std::nullopt;
  core::MappedBuffer::CpuAccess access(**map);
  return Barcode::read_xrgb((*map)->data() + size_t(y) * (*map)->pitch(), (*map)->pitch(), frame.width(),
                            frame.height() - y);
}

std::unique_ptr<capture::qemu::QemuSource> make_source(const GuestVm& vm, int64_t console = -1) {
  capture::qemu::QemuSourceConfig config;
  config.target = vm.display_target();
  config.console = console;
  config.name = console < 0 ? "guest" : "guest-" + std::to_string(console);
  config.max_backoff = 500ms;
  auto source = capture::qemu::QemuSource::create(config);
  REQUIRE(source.ok());
  return std::move(*source);
}


std::set<uint64_t> reported_values(const GuestVm& vm, int head) {
  std::set<uint64_t> values;
  for (const auto& f : vm.frames())
    if (f.head == head && f.boot == vm.boot()) values.insert(f.value & 0xffffff);
  return values;
}

// The guest's frames reach a QemuSource: a frame whose barcode is one the guest said it finished.
void check_frames_reach_the_source(GuestVm& vm, capture::qemu::QemuSource& source, LatestFrame& seen, int head = 0) {
  const auto& o = vm.options();
  // The guest keeps drawing: F lines advance (typing changes something at least every second).
  auto first = vm.wait_frame_after(head, 0, 10s);
  REQUIRE(first);
  auto later = vm.wait_frame_after(head, first->arrival_ns + 500'000'000, 10s);
  INFO(vm.diagnostics());
  REQUIRE(later);
  CHECK(later->value > first->value);
  CHECK(later->drawn > first->drawn);

  std::optional<uint32_t> read;
  REQUIRE(seen.wait(
      [&](const core::Frame& f) {
        if (f.width() != o.width || f.height() != o.height) return false;
        read = read_barcode(f, 0);
        return read.has_value() && *read > 0;
      },
      30s));
  INFO("barcode read from the source's frame: " << *read);
  // The guest reports a frame once it is in the framebuffer, before QEMU's next refresh sends it.
  CHECK(vm.wait_frame(head, *read, 5s));
  CHECK(source.connected());
}

// A key sent through the source's input reaches the guest's keyboard (K line) and comes back on
// screen as the key-echo barcode.
void check_key_echo(GuestVm& vm, capture::qemu::QemuSource& source, LatestFrame& seen) {
  const auto qnum = core::qnum_from_key_code("KeyA");
  REQUIRE(qnum);
  constexpr uint32_t kKeyA = KEY_A;  // what the guest's evdev reports for qnum 0x1e
  REQUIRE(source.input());
  // The listener may still be registering: press until the guest sees one.
  std::optional<bench::GuestKey> key;
  for (int attempt = 0; attempt < 10 && !key; ++attempt) {
    source.input()->send(core::InputEvent::key(*qnum, true));
    source.input()->send(core::InputEvent::key(*qnum, false));
    key = vm.wait_key(1, 3s);
  }
  INFO(vm.diagnostics());
  REQUIRE(key);
  CHECK(key->code == kKeyA);
  const uint32_t count = vm.keys().back().count;  // a retry may have pressed twice
  const uint32_t echo = guest::key_echo_value(count, kKeyA);
  std::optional<uint32_t> shown;
  CHECK(seen.wait(
      [&](const core::Frame& f) {
        shown = read_barcode(f, guest::kKeyEchoStrip.y);
        return shown == echo;
      },
      20s));
  INFO("key echo expected " << echo << ", shown " << (shown ? std::to_string(*shown) : "nothing"));
  CHECK(shown == echo);
}

void check_guest(Qemu qemu, int bpp, bool peer_to_peer = false) {
  bench::GuestVmOptions options;
  options.qemu = qemu;
  options.peer_to_peer = peer_to_peer;
  options.width = 1280;
  options.height = 720;
  options.bpp = bpp;
  options.workload = "window-drag";
  options.fps = 30;
  if (qemu == Qemu::V10) options.trace = {"dbus_can_share_map"};  // once, at registration
  auto vm = test::boot_guest(options);
  auto source = make_source(*vm);
  LatestFrame seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  check_frames_reach_the_source(*vm, *source, seen);
  check_key_echo(*vm, *source, seen);
  source->stop();
  // QEMU 10 shares the surface it converts a 24-bit mode into (a memfd: ScanoutMap/UpdateMap, no
  // pixels on the socket); a 32-bit mode's surface is the VGA's memory and comes by value.
  const auto stats = source->listener_stats();
  INFO("listener: " << stats.scanout_kind << ", " << stats.scanouts << " scanouts and " << stats.updates
                    << " updates by value, " << stats.map_scanouts << " ScanoutMap, " << stats.map_updates
                    << " UpdateMap, " << stats.pixel_bytes_received << " pixel bytes on the socket");
  if (qemu == Qemu::V10 && bpp == 24) {
    CHECK(vm->qemu_log(200000).find("can_share_map: 1") != std::string::npos);
    CHECK(stats.scanout_kind == "shared-memory");
    CHECK(stats.map_updates > 0);
    CHECK(stats.pixel_bytes_received == 0);
  } else {
    CHECK(stats.scanout_kind == "pixels-by-value");  // QEMU 7.2 has no Unix.Map
  }
  const auto frames = vm->frames();
  INFO("frame lines: " << frames.size() << ", skipped by the guest: " << (frames.empty() ? 0 : frames.back().skipped));
  CHECK(vm->qemu_running());
}

}  // namespace

TEST_CASE("the test guest under QEMU 7.2 draws barcoded frames a QemuSource receives, and echoes a key sent through it") {
  check_guest(Qemu::Host72, 32);
}

TEST_CASE("the test guest under QEMU 10, peer to peer through QMP, draws barcoded frames a QemuSource receives, and echoes a key") {
  check_guest(Qemu::V10, 32, /*peer_to_peer=*/true);
}

TEST_CASE("the test guest in a 24-bit mode under QEMU 7.2 reaches a QemuSource with its barcodes") {
  check_guest(Qemu::Host72, 24);
}

TEST_CASE("the test guest in a 24-bit mode under QEMU 10 reaches a QemuSource with its barcodes") {
  check_guest(Qemu::V10, 24);
}

TEST_CASE("two heads of the test guest (VGA and secondary-vga) reach two QemuSources, each with its own barcodes") {
  bench::GuestVmOptions options;
  options.qemu = Qemu::Host72;
  options.heads = 2;
  options.bpp = 24;  // head 0 (vesafb); head 1 (bochs) is 32 bpp
  options.workload = "window-drag";
  options.workload1 = "scrolling";
  auto vm = test::boot_guest(options);
  auto second = vm->wait_ready(1, test::kGuestBootLimit);
  if (!second) FAIL(second.error());
  CHECK(second->width == 1280);
  CHECK(second->height == 720);
  CHECK(second->bpp == 32);
  for (int head : {0, 1}) {
    auto source = make_source(*vm, head);
    LatestFrame seen;
    REQUIRE(source->start(seen.callbacks()).ok());
    check_frames_reach_the_source(*vm, *source, seen, head);
    CHECK(source->console().label == (head == 0 ? "VGA" : "secondary-vga"));  // each is head 0 of its device
    source->stop();
  }
}

TEST_CASE("the test guest on virtio-vga under QEMU 10 reaches a QemuSource with its barcodes") {
  bench::GuestVmOptions options;
  options.qemu = Qemu::V10;
  options.display = bench::GuestDisplay::VirtioVga;
  auto vm = test::boot_guest(options);
  auto source = make_source(*vm);
  LatestFrame seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  check_frames_reach_the_source(*vm, *source, seen);
  const auto stats = source->listener_stats();
  INFO("listener: " << stats.scanout_kind << ", " << stats.map_updates << " UpdateMap, " << stats.updates
                    << " Update, " << stats.pixel_bytes_received << " pixel bytes on the socket");
  CHECK(stats.frames > 0);
  source->stop();
}

TEST_CASE("the test guest refuses modes it does not offer (with the list of those it does) and recording without audio") {
  bench::GuestVmOptions options;
  options.width = 1000;
  options.height = 700;
  auto argv = GuestVm::qemu_arguments(options, "/tmp/x");
  REQUIRE_FALSE(argv.ok());
  CHECK(argv.error().find("1280x720x32") != std::string::npos);
  options = {};
  options.workload = "jumping";
  argv = GuestVm::qemu_arguments(options, "/tmp/x");
  REQUIRE_FALSE(argv.ok());
  CHECK(argv.error().find("window-drag") != std::string::npos);
  options = {};
  options.record = true;  // without audio: nothing to record from
  argv = GuestVm::qemu_arguments(options, "/tmp/x");
  REQUIRE_FALSE(argv.ok());
  CHECK(argv.error().find("record needs audio") != std::string::npos);
  options.audio = true;
  argv = GuestVm::qemu_arguments(options, "/tmp/x");
  REQUIRE(argv.ok());
  CHECK(std::find(argv->begin(), argv->end(), "hda-duplex,audiodev=snd0,mixer=off") != argv->end());
}

TEST_CASE("one guest is served by QEMU's own SPICE and by a QemuSource at the same time") {
  bench::GuestVmOptions options;
  options.qemu = Qemu::Host72;
  options.qemu_spice = true;
  options.workload = "typing";
  auto vm = test::boot_guest(options);
  auto source = make_source(*vm);
  LatestFrame seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  check_frames_reach_the_source(*vm, *source, seen);

  bench::SpiceClientOptions client_options;
  client_options.unix_path = vm->spice_socket();
  bench::SpiceClient client(client_options);
  REQUIRE(client.wait_outcome(30s) == bench::SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_display(30s));
  // A barcode the guest reported after the client connected, shown by QEMU's SPICE too.
  auto frame = vm->wait_frame_after(0, core::monotonic_now_ns(), 10s);
  REQUIRE(frame);
  INFO(vm->diagnostics());
  CHECK(client.wait_barcode(uint32_t(frame->value & 0xffffff), 30s));
  source->stop();
}

TEST_CASE("the test guest comes back on the same bus after QEMU is killed, and the source follows it") {
  bench::GuestVmOptions options;
  options.qemu = Qemu::Host72;
  auto vm = test::boot_guest(options);
  auto source = make_source(*vm);
  LatestFrame seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  check_frames_reach_the_source(*vm, *source, seen);
  const uint64_t connections = source->connections();

  vm->kill_qemu();
  REQUIRE(vm->restart_qemu().ok());
  auto ready = vm->wait_ready(0, test::kGuestBootLimit);
  if (!ready) FAIL(ready.error());
  CHECK(vm->boot() == 1);
  // The source registers with the new QEMU; what it delivers from then on is the new boot's
  // picture, whose barcodes start again from 0.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (source->connections() == connections && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  REQUIRE(source->connections() > connections);
  const uint64_t delivered = seen.count();
  auto frame = vm->wait_frame_after(0, core::monotonic_now_ns(), 20s);
  INFO(vm->diagnostics());
  REQUIRE(frame);
  std::optional<uint32_t> read;
  CHECK(seen.wait(
      [&](const core::Frame& f) {
        read = read_barcode(f, 0);
        return read && *read >= (frame->value & 0xffffff) && reported_values(*vm, 0).count(*read) > 0;
      },
      30s, delivered));
  source->stop();
}
