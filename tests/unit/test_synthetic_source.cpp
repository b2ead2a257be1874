#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/mapped_buffer.hpp"

using namespace vdistream;
using capture::SyntheticConfig;
using capture::SyntheticSource;
using capture::Workload;

namespace {

constexpr Workload kAllWorkloads[] = {Workload::Idle,       Workload::Typing, Workload::Scrolling,
                                      Workload::WindowDrag, Workload::Video,  Workload::FullMotion};

// Large enough for the barcode, small enough to keep the tests quick.
SyntheticConfig config_for(Workload workload, int32_t width = 800, int32_t height = 480, double fps = 30) {
  SyntheticConfig config;
  config.workload = workload;
  config.width = width;
  config.height = height;
  config.fps = fps;
  return config;
}

std::unique_ptr<SyntheticSource> make_source(const SyntheticConfig& config) {
  auto source = SyntheticSource::create(config);
  INFO(source.error());
  REQUIRE(source.ok());
  return std::move(source.value());
}

// A picture as tightly packed XRGB rows.
struct Picture {
  int32_t width = 0, height = 0;
  std::vector<uint8_t> bytes;

  uint32_t pitch() const { return uint32_t(width) * 4; }
  const uint8_t* row(int32_t y) const { return bytes.data() + size_t(y) * pitch(); }
  bool operator==(const Picture&) const = default;
};

Picture reference(const SyntheticSource& source, uint64_t sequence) {
  Picture p{source.config().width, source.config().height, {}};
  p.bytes.resize(size_t(p.pitch()) * size_t(p.height));
  source.render_reference(sequence, p.bytes.data(), p.pitch());
  return p;
}

Picture pixels_of(const core::Frame& frame) {
  auto mapped = core::MappedBuffer::map(*frame.buffer);
  REQUIRE(mapped.ok());
  Picture p{frame.width(), frame.height(), {}};
  p.bytes.resize(size_t(p.pitch()) * size_t(p.height));
  for (int32_t y = 0; y < p.height; ++y)
    std::memcpy(p.bytes.data() + size_t(y) * p.pitch(), (*mapped)->data() + size_t(y) * (*mapped)->pitch(), p.pitch());
  return p;
}

core::Frame next_frame(SyntheticSource& source) {
  auto frame = source.render_next();
  INFO(frame.error());
  REQUIRE(frame.ok());
  return std::move(frame.value());
}

std::string describe(const SyntheticConfig& c) {
  return std::string(capture::workload_name(c.workload)) + " " + std::to_string(c.width) + "x" +
         std::to_string(c.height) + "@" + std::to_string(c.fps);
}

// Checks that `damage` is exactly what differs between two pictures: nothing outside it changed,
// and something inside it did.
void require_exact_damage(const Picture& before, const Picture& after, const core::DamageRegion& damage) {
  std::vector<uint8_t> inside(size_t(after.width) * size_t(after.height), 0);
  for (const core::Rect& r : damage.rects()) {
    REQUIRE(core::Rect{0, 0, after.width, after.height}.contains(r));
    for (int32_t y = r.y; y < r.bottom(); ++y) std::memset(&inside[size_t(y) * size_t(after.width) + size_t(r.x)], 1, size_t(r.width));
  }
  bool changed_inside = false;
  for (int32_t y = 0; y < after.height; ++y) {
    const uint32_t* a = reinterpret_cast<const uint32_t*>(before.row(y));
    const uint32_t* b = reinterpret_cast<const uint32_t*>(after.row(y));
    for (int32_t x = 0; x < after.width; ++x) {
      bool differs = a[x] != b[x];
      if (inside[size_t(y) * size_t(after.width) + size_t(x)]) {
        changed_inside |= differs;
      } else if (differs) {
        FAIL("pixel " << x << "," << y << " changed outside the damage " << damage.to_string());
      }
    }
  }
  if (!damage.empty()) REQUIRE(changed_inside);
}

}  // namespace

TEST_CASE("a synthetic spec names a workload, and optionally a size and a frame rate") {
  auto plain = capture::parse_synthetic_spec("synthetic:typing");
  REQUIRE(plain.ok());
  CHECK(plain->workload == Workload::Typing);
  CHECK(plain->width == 1280);
  CHECK(plain->height == 720);
  CHECK(plain->fps == 30.0);

  auto sized = capture::parse_synthetic_spec("synthetic:typing@1920x1080");
  REQUIRE(sized.ok());
  CHECK(sized->width == 1920);
  CHECK(sized->height == 1080);

  auto full = capture::parse_synthetic_spec("synthetic:video@1280x720@60");
  REQUIRE(full.ok());
  CHECK(full->workload == Workload::Video);
  CHECK(full->fps == 60.0);

  auto rate_only = capture::parse_synthetic_spec("synthetic:window-drag@29.97");
  REQUIRE(rate_only.ok());
  CHECK(rate_only->workload == Workload::WindowDrag);
  CHECK(rate_only->fps == Approx(29.97));

  for (Workload w : kAllWorkloads) {
    auto parsed = capture::parse_synthetic_spec(std::string("synthetic:") + capture::workload_name(w));
    REQUIRE(parsed.ok());
    CHECK(parsed->workload == w);
  }
}

TEST_CASE("a bad synthetic spec is refused with a message saying what was wrong") {
  auto refused_with = [](const std::string& spec, const std::string& expected) {
    auto parsed = capture::parse_synthetic_spec(spec);
    INFO(spec << " -> " << parsed.error());
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().find(expected) != std::string::npos);
  };
  refused_with("typing", "synthetic:WORKLOAD");
  refused_with("synthetic:dancing", "unknown workload 'dancing'");
  refused_with("synthetic:dancing", "window-drag");  // lists what exists
  refused_with("synthetic:", "unknown workload ''");
  refused_with("synthetic:typing@1920x", "'1920x' is not a size");
  refused_with("synthetic:typing@x1080", "'x1080' is not a size");
  refused_with("synthetic:typing@fast", "'fast' is not a frame rate");
  refused_with("synthetic:typing@", "empty field");
  refused_with("synthetic:typing@30@1920x1080", "before the frame rate");
  refused_with("synthetic:typing@30@60", "second frame rate");
  refused_with("synthetic:typing@8x8", "size 8x8 is outside");
  refused_with("synthetic:typing@4000x2000", "size 4000x2000 is outside");
  refused_with("synthetic:typing@1920x1080@0", "frame rate 0 is outside");
  refused_with("synthetic:typing@1920x1080@241", "frame rate 241 is outside");
}

TEST_CASE("creating a synthetic source checks its configuration") {
  auto refused_with = [](SyntheticConfig config, const std::string& expected) {
    auto source = SyntheticSource::create(config);
    INFO(source.error());
    REQUIRE_FALSE(source.ok());
    CHECK(source.error().find(expected) != std::string::npos);
  };
  refused_with(config_for(Workload::Typing, 8, 480), "size 8x480 is outside 16x16..3840x2160");
  refused_with(config_for(Workload::Typing, 800, 4000), "size 800x4000 is outside");
  refused_with(config_for(Workload::Typing, 800, 480, 0.5), "frame rate 0.5 is outside 1..240 fps");
  refused_with(config_for(Workload::Typing, 800, 480, 1000), "frame rate 1000 is outside");
  SyntheticConfig pool = config_for(Workload::Typing);
  pool.pool_size = 1;
  refused_with(pool, "pool size 1 is outside 2..8 buffers");
  pool.pool_size = 9;
  refused_with(pool, "pool size 9 is outside");

  auto source = make_source(config_for(Workload::Typing));
  CHECK(source->describe() == "synthetic:typing@800x480@30");
  CHECK(make_source(config_for(Workload::Video, 640, 360, 29.97))->describe() == "synthetic:video@640x360@29.97");
}

TEST_CASE("two synthetic sources with the same configuration draw the same pixels") {
  for (Workload workload : kAllWorkloads) {
    INFO(capture::workload_name(workload));
    auto a = make_source(config_for(workload));
    auto b = make_source(config_for(workload));
    for (int i = 0; i < 12; ++i) {
      core::Frame fa = next_frame(*a), fb = next_frame(*b);
      REQUIRE(fa.sequence == fb.sequence);
      REQUIRE(fa.damage.rects() == fb.damage.rects());
      if (i == 11) REQUIRE(pixels_of(fa) == pixels_of(fb));
    }
  }
}

TEST_CASE("every pool buffer handed out equals the reference picture of its frame") {
  std::vector<SyntheticConfig> configs;
  for (Workload w : kAllWorkloads) {
    configs.push_back(config_for(w));
    configs.push_back(config_for(w, 16, 16, 240));  // everything clipped, nothing may crash
    configs.push_back(config_for(w, 200, 120, 7.5));
  }
  configs.push_back(config_for(Workload::Typing, 160, 120, 1));  // a page fills and clears every few frames
  for (const SyntheticConfig& config : configs) {
    INFO(describe(config));
    auto source = make_source(config);
    std::deque<core::Frame> held;  // holding 0, 1 or 2 frames rotates the pool and lets damage pile up
    for (uint64_t i = 0; i < 40; ++i) {
      core::Frame frame = next_frame(*source);
      REQUIRE(frame.sequence == i);
      INFO("frame " << i << " damage " << frame.damage.to_string());
      REQUIRE(pixels_of(frame) == reference(*source, i));
      held.push_back(std::move(frame));
      while (held.size() > i % 3) held.pop_front();
    }
  }
}

TEST_CASE("the damage of a synthetic frame is exactly what changed since the previous one") {
  std::vector<SyntheticConfig> configs{config_for(Workload::Typing, 160, 120, 1)};  // pages fill and clear
  for (Workload workload : kAllWorkloads) {
    configs.push_back(config_for(workload));
    configs.push_back(config_for(workload, 200, 120, 7.5));
  }
  for (const SyntheticConfig& config : configs) {
    INFO(describe(config));
    auto source = make_source(config);
    core::Frame first = next_frame(*source);
    REQUIRE(first.damage.covers(config.width, config.height));
    Picture previous = reference(*source, 0);
    for (uint64_t i = 1; i < 40; ++i) {
      core::Frame frame = next_frame(*source);
      Picture current = reference(*source, i);
      INFO("frame " << i << " damage " << frame.damage.to_string());
      require_exact_damage(previous, current, frame.damage);
      previous = std::move(current);
    }
  }
}

TEST_CASE("an idle desktop reports no damage after its first frame") {
  auto source = make_source(config_for(Workload::Idle));
  REQUIRE(next_frame(*source).damage.covers(800, 480));
  for (int i = 1; i < 100; ++i) REQUIRE(next_frame(*source).damage.empty());
  core::Frame last = next_frame(*source);
  REQUIRE(pixels_of(last) == reference(*source, 0));
}

TEST_CASE("fullmotion damages the whole surface on every frame") {
  auto source = make_source(config_for(Workload::FullMotion));
  for (int i = 0; i < 20; ++i) REQUIRE(next_frame(*source).damage.covers(800, 480));
}

TEST_CASE("every frame that changes something carries its own number in the barcode") {
  for (Workload workload : kAllWorkloads) {
    INFO(capture::workload_name(workload));
    auto source = make_source(config_for(workload, 800, 480, 60));
    uint64_t shown = 0;
    for (uint64_t i = 0; i < 40; ++i) {
      core::Frame frame = next_frame(*source);
      if (!frame.damage.empty()) {
        shown = i;
        REQUIRE(frame.damage.bounds().contains(capture::Barcode::area(800, 480)));
      }
      Picture p = pixels_of(frame);
      INFO("frame " << i);
      REQUIRE(capture::Barcode::read_xrgb(p.bytes.data(), p.pitch(), p.width, p.height) == shown);
    }
  }
}

TEST_CASE("a pool buffer still held downstream is not drawn over") {
  SyntheticConfig config = config_for(Workload::FullMotion, 320, 240);
  config.pool_size = 2;
  auto source = make_source(config);
  core::Frame first = next_frame(*source);
  core::Frame second = next_frame(*source);
  REQUIRE(first.buffer != second.buffer);
  Picture first_pixels = pixels_of(first);

  auto refused = source->render_next();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == "all 2 pool buffers are in use");
  CHECK(source->next_sequence() == 2);  // nothing was skipped, the frame is only late
  REQUIRE(pixels_of(first) == first_pixels);

  first = {};
  core::Frame third = next_frame(*source);
  CHECK(third.sequence == 2);
  CHECK(third.buffer != second.buffer);
  REQUIRE(pixels_of(third) == reference(*source, 2));
}

TEST_CASE("a paced synthetic source delivers frames in order and stops at max_frames") {
  auto source = make_source(config_for(Workload::Typing, 320, 240, 200));
  source->set_max_frames(20);
  std::mutex mutex;
  std::vector<uint64_t> sequences;
  bool all_stamped = true;
  capture::SourceCallbacks callbacks;
  callbacks.on_frame = [&](core::Frame frame) {  // on the source's thread: no REQUIRE here
    std::lock_guard lock(mutex);
    sequences.push_back(frame.sequence);
    all_stamped &= frame.timestamps.captured_ns > 0;
  };
  REQUIRE(source->start(callbacks).ok());
  for (int i = 0; i < 1000 && !source->finished(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  source->stop();
  REQUIRE(source->finished());
  std::lock_guard lock(mutex);
  REQUIRE(sequences.size() == 20);
  CHECK(all_stamped);
  for (uint64_t i = 0; i < sequences.size(); ++i) REQUIRE(sequences[i] == i);
}

TEST_CASE("a paced synthetic source skips ticks instead of blocking when every buffer is held") {
  SyntheticConfig config = config_for(Workload::Video, 320, 240, 240);
  config.pool_size = 2;
  auto source = make_source(config);
  std::mutex mutex;
  std::vector<core::Frame> kept;  // never released while running: the pool runs dry
  capture::SourceCallbacks callbacks;
  callbacks.on_frame = [&](core::Frame frame) {
    std::lock_guard lock(mutex);
    kept.push_back(std::move(frame));
  };
  REQUIRE(source->start(callbacks).ok());
  for (int i = 0; i < 1000 && source->ticks_skipped_busy() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  source->stop();
  CHECK(source->ticks_skipped_busy() > 0);
  CHECK_FALSE(source->finished());
  std::lock_guard lock(mutex);
  CHECK(kept.size() == 2);
}

TEST_CASE("a paced synthetic source refuses to start twice or without a frame callback") {
  auto source = make_source(config_for(Workload::Idle, 320, 240, 60));
  REQUIRE_FALSE(source->start({}).ok());
  capture::SourceCallbacks callbacks;
  callbacks.on_frame = [](core::Frame) {};
  REQUIRE(source->start(callbacks).ok());
  auto again = source->start(callbacks);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().find("already running") != std::string::npos);
  source->stop();
}
