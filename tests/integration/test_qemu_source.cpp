// The QEMU source against a real qemu-system-x86_64 (TCG, VGA, SeaBIOS, no guest OS).
#include <catch2/catch.hpp>

#include <drm_fourcc.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "core/keymap.hpp"
#include "capture/qemu/qemu_source.hpp"
#include "core/mapped_buffer.hpp"
#include "encode/decoder.hpp"
#include "encode/software/x264_encoder.hpp"
#include "fixtures/process.hpp"
#include "fixtures/qemu_vm.hpp"
#include "fixtures/reference.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

// What a source reported, with waits bounded by deadlines.
class Observer {
 public:
  capture::SourceCallbacks callbacks() {
    capture::SourceCallbacks cb;
    cb.on_frame = [this](core::Frame frame) {
      std::lock_guard lock(mutex_);
      latest_ = std::move(frame);
      ++frames_;
      cv_.notify_all();
    };
    cb.on_state = [this](bool connected, const std::string& why) {
      std::lock_guard lock(mutex_);
      states_.emplace_back(connected, why);
      cv_.notify_all();
    };
    return cb;
  }
  // Waits until `pred(latest frame)` holds; false after `limit`.
  // Waits until a frame after the first `after` ones satisfies `pred`; false after `limit`.
  bool wait_frame(const std::function<bool(const core::Frame&)>& pred, std::chrono::seconds limit = 60s,
                  uint64_t after = 0) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return latest_.buffer && frames_ > after && pred(latest_); });
  }
  // Waits for a report of `connected` after the first `from` reports; its index, or -1.
  int wait_state(bool connected, size_t from, std::chrono::seconds limit = 60s) {
    std::unique_lock lock(mutex_);
    int found = -1;
    cv_.wait_for(lock, limit, [&] {
      for (size_t i = from; i < states_.size(); ++i)
        if (states_[i].first == connected) return found = int(i), true;
      return false;
    });
    return found;
  }
  core::Frame latest() {
    std::lock_guard lock(mutex_);
    return latest_;
  }
  uint64_t frame_count() {
    std::lock_guard lock(mutex_);
    return frames_;
  }
  std::vector<std::pair<bool, std::string>> states() {
    std::lock_guard lock(mutex_);
    return states_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  core::Frame latest_;
  uint64_t frames_ = 0;
  std::vector<std::pair<bool, std::string>> states_;
};

std::vector<uint8_t> snapshot(const core::Frame& frame) {
  auto map = core::MappedBuffer::map(*frame.buffer);
  REQUIRE(map.ok());
  std::vector<uint8_t> px(size_t(frame.width()) * frame.height() * 4);
  for (int32_t y = 0; y < frame.height(); ++y)
    std::memcpy(px.data() + size_t(y) * frame.width() * 4, (*map)->data() + size_t(y) * (*map)->pitch(),
                size_t(frame.width()) * 4);
  return px;
}

bool non_uniform(const core::Frame& frame) {
  auto px = snapshot(frame);
  for (size_t i = 4; i < px.size(); i += 4)
    if (std::memcmp(&px[i], &px[0], 3) != 0) return true;
  return false;
}

// Rows of text (16-pixel bands) with more lit pixels than a blinking cursor has.
std::vector<bool> text_rows(const core::Frame& frame) {
  auto px = snapshot(frame);
  const int32_t w = frame.width(), h = frame.height();
  std::vector<bool> rows(size_t(h / 16));
  for (int32_t band = 0; band < h / 16; ++band) {
    int lit = 0;
    for (int32_t y = band * 16; y < band * 16 + 16; ++y)
      for (int32_t x = 0; x < w; ++x) lit += px[(size_t(y) * w + x) * 4 + 1] > 0x40 ? 1 : 0;
    rows[band] = lit > 40;
  }
  return rows;
}

size_t count(const std::vector<bool>& rows) { return size_t(std::count(rows.begin(), rows.end(), true)); }

std::unique_ptr<capture::qemu::QemuSource> make_source(const test::QemuVm& vm) {
  capture::qemu::QemuSourceConfig config;
  config.target = vm.target();
  config.name = "test-vm";
  config.max_backoff = 500ms;
  auto source = capture::qemu::QemuSource::create(config);
  REQUIRE(source.ok());
  return std::move(*source);
}

// Encodes one still picture and decodes it again: the decoder must get the same picture back.
void check_encodes(const core::Frame& frame) {
  auto pixels = snapshot(frame);
  auto copy = core::FrameBuffer::allocate_memfd(frame.width(), frame.height(), DRM_FORMAT_XRGB8888, "still");
  REQUIRE(copy.ok());
  {
    auto map = core::MappedBuffer::map(**copy, core::MappedBuffer::Access::ReadWrite);
    REQUIRE(map.ok());
    for (int32_t y = 0; y < frame.height(); ++y)
      std::memcpy((*map)->writable_data() + size_t(y) * (*map)->pitch(), pixels.data() + size_t(y) * frame.width() * 4,
                  size_t(frame.width()) * 4);
  }
  encode::EncoderConfig config;
  config.width = frame.width();
  config.height = frame.height();
  config.bitrate_bps = 8'000'000;
  auto encoder = encode::X264Encoder::create(config);
  REQUIRE(encoder.ok());
  core::Frame still;
  still.buffer = *copy;
  still.damage = core::DamageRegion::full(frame.width(), frame.height());
  auto out = (*encoder)->encode(still);
  REQUIRE(out.ok());
  REQUIRE(!out->empty());
  CHECK((*out)[0].keyframe);
  auto decoder = encode::Decoder::create(core::Codec::H264);
  REQUIRE(decoder.ok());
  std::vector<encode::DecodedPicture> pictures;
  for (const auto& au : *out) {
    auto decoded = (*decoder)->decode(au.data);
    REQUIRE(decoded.ok());
    for (auto& p : *decoded) pictures.push_back(std::move(p));
  }
  auto flushed = (*decoder)->flush();
  REQUIRE(flushed.ok());
  for (auto& p : *flushed) pictures.push_back(std::move(p));
  REQUIRE(pictures.size() == 1);
  CHECK(pictures[0].width == frame.width());
  CHECK(pictures[0].height == frame.height());
  auto reference = test::luma_of_xrgb(pixels, frame.width(), frame.height());
  CHECK(encode::psnr(pictures[0].y, reference) > 30.0);
}

bool is_seabios_screen(const core::Frame& f) {
  return ((f.width() == 720 && f.height() == 400) || (f.width() == 640 && f.height() == 480)) && non_uniform(f);
}

// "Press ESC for boot menu." is on the third text row: SeaBIOS now waits for a key.
bool shows_boot_menu_prompt(const core::Frame& f) {
  if (!is_seabios_screen(f)) return false;
  auto rows = text_rows(f);
  return rows.size() > 2 && rows[0] && rows[2];
}

}  // namespace

TEST_CASE("a VM on a private bus streams SeaBIOS's screen as frames that encode to a decodable stream") {
  test::QemuVm vm;
  auto source = make_source(vm);
  Observer seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  // SeaBIOS ends in 80x25 text mode (720x400) saying that nothing could be booted.
  INFO(vm.qemu_log());
  REQUIRE(seen.wait_frame([](const core::Frame& f) { return f.width() == 720 && f.height() == 400 && non_uniform(f); }));
  CHECK(source->connected());
  CHECK(source->console().label == "VGA");
  CHECK(source->input() != nullptr);
  auto stats = source->listener_stats();
  CHECK(stats.scanouts + stats.updates > 0);
  CHECK(stats.refused == 0);
  check_encodes(seen.latest());

  // VGA cannot resize to a client's window: QEMU's answer comes back, nothing breaks.
  std::mutex m;
  std::condition_variable cv;
  std::optional<core::Status> answer;
  source->request_resize(1024, 768, [&](core::Status s) {
    std::lock_guard lock(m);
    answer = s;
    cv.notify_all();
  });
  std::unique_lock lock(m);
  REQUIRE(cv.wait_for(lock, 10s, [&] { return answer.has_value(); }));
  INFO(answer->error());
  CHECK((answer->ok() || answer->error().find("SetUIInfo") != std::string::npos));
  lock.unlock();
  source->stop();
}

TEST_CASE("a VM reached peer to peer through its QMP socket streams SeaBIOS's screen") {
  test::QemuVm vm({.peer_to_peer = true});
  auto source = make_source(vm);
  Observer seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  INFO(vm.qemu_log());
  REQUIRE(seen.wait_frame(is_seabios_screen));
  REQUIRE(seen.wait_frame([](const core::Frame& f) { return f.width() == 720 && f.height() == 400 && non_uniform(f); }));
  CHECK(source->console().type == "Graphic");
  check_encodes(seen.latest());
  source->stop();
  CHECK_FALSE(seen.states().back().first);
}

TEST_CASE("ESC sent through the InputSink opens SeaBIOS's boot menu") {
  test::QemuVm vm({.boot_menu_ms = 60000});
  auto source = make_source(vm);
  Observer seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  INFO(vm.qemu_log());
  REQUIRE(seen.wait_frame(shows_boot_menu_prompt));
  const size_t before = count(text_rows(seen.latest()));
  const auto esc = core::qnum_from_key_code("Escape");
  REQUIRE(esc == 1u);
  source->input()->send(core::InputEvent::key(*esc, true));
  source->input()->send(core::InputEvent::key(*esc, false));
  // The menu ("Select boot device:" and its entries) adds rows of text.
  CHECK(seen.wait_frame([&](const core::Frame& f) { return count(text_rows(f)) > before; }, 30s));
  CHECK(source->vm_input().counters().sent == 2);
  CHECK(source->vm_input().counters().errors == 0);
  source->stop();
}

TEST_CASE("ESC pressed in a SPICE client reaches the VM and opens SeaBIOS's boot menu", "[spice]") {
  test::QemuVm vm({.boot_menu_ms = 60000});
  auto source = make_source(vm);
  spice::SpiceConfig config;
  config.name = "test-vm";
  config.listen.port = test::free_tcp_port();
  config.ticket = spice::Ticket{"esc-ticket", 0};
  auto desktop = spice::SpiceDesktop::create(config, source->input());
  REQUIRE(desktop);
  Observer seen;
  capture::SourceCallbacks callbacks = seen.callbacks();
  callbacks.on_frame = [&, observe = callbacks.on_frame](core::Frame frame) {
    (void)(*desktop)->on_frame(frame);  // QXL mode: the damaged rectangles go to the client
    observe(std::move(frame));
  };
  REQUIRE(source->start(callbacks).ok());
  INFO(vm.qemu_log());
  REQUIRE(seen.wait_frame(shows_boot_menu_prompt));
  const size_t before = count(text_rows(seen.latest()));

  bench::SpiceClientOptions o;
  o.port = config.listen.port;
  o.password = "esc-ticket";
  bench::SpiceClient client(o);
  REQUIRE(client.wait_outcome(30s) == bench::SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_inputs(30s));
  client.key_press(0x01);  // Escape, as the client's keyboard sends it (PC AT scancode)
  client.key_release(0x01);
  CHECK(seen.wait_frame([&](const core::Frame& f) { return count(text_rows(f)) > before; }, 30s));
  CHECK(source->vm_input().counters().sent >= 2);
  CHECK(source->vm_input().counters().errors == 0);
  source->stop();
  desktop->reset();
}

TEST_CASE("when QEMU is killed mid-stream the source reports it and picks up a new QEMU on the same bus") {
  test::QemuVm vm;
  auto source = make_source(vm);
  Observer seen;
  REQUIRE(source->start(seen.callbacks()).ok());
  REQUIRE(seen.wait_frame(is_seabios_screen));
  // (Reports before the first connection, if QEMU was slower than us to reach the bus, are fine.)
  const int up = seen.wait_state(true, 0);
  REQUIRE(up >= 0);

  vm.kill_qemu();
  const int down = seen.wait_state(false, size_t(up) + 1);
  REQUIRE(down >= 0);
  CHECK_FALSE(source->connected());
  const std::string why = seen.states()[size_t(down)].second;
  INFO(why);
  CHECK_THAT(why, Catch::Contains("closed"));
  const uint64_t frames_before = seen.frame_count();

  vm.start_qemu();
  REQUIRE(seen.wait_state(true, size_t(down) + 1) >= 0);
  REQUIRE(seen.wait_frame(is_seabios_screen, 60s, frames_before));
  CHECK(source->connections() == 2);
  source->stop();
}
