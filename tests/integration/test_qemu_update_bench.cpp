// Benchmark (hidden: run with `vdistream_integration_tests "[benchmark]"`): the cost of QEMU's
// pixels-by-value path at 1080p. A test peer plays QEMU over a real peer-to-peer GDBus socket,
// sending full-width bands as VGA dirty tracking does, into the Listener and on through the
// pipeline's x264 encoder; the synthetic source on the same encoder is the baseline.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "encode/pipeline.hpp"
#include "fixtures/qemu_peer.hpp"
#include "fixtures/sinks.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

constexpr int32_t kWidth = 1920, kHeight = 1080, kBand = 120, kBands = kHeight / kBand;

std::vector<std::vector<uint8_t>> band_patterns(int n) {
  std::vector<std::vector<uint8_t>> out;
  for (int k = 0; k < n; ++k) {
    std::vector<uint8_t> px(size_t(kWidth) * kBand * 4);
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t((i / 4 * (k + 3)) ^ (i >> 9) ^ (k * 37));
    out.push_back(std::move(px));
  }
  return out;
}

std::unique_ptr<encode::DesktopPipeline> make_pipeline() {
  encode::PipelineConfig config;
  config.name = "bench";
  config.encoder.fps = 60;
  auto pipeline = encode::DesktopPipeline::create(config, encode::EncoderRegistry::builtin());
  REQUIRE(pipeline.ok());
  return std::move(*pipeline);
}

// Sends guest frames of kBands Updates each, waiting for the listener to have handed each one on
// as one frame (its bands coalesced; as QEMU's refresh timer would pace them, but as fast as the
// listener goes). A frame not handed on within 5 s fails the benchmark rather than hanging it.
struct UpdateRun {
  uint64_t guest_frames = 0, updates = 0;
  double seconds = 0, cpu_seconds = 0;
};

UpdateRun send_guest_frames(test::ListenerPeer& peer, std::atomic<uint64_t>& taken, double seconds) {
  auto patterns = band_patterns(4);
  UpdateRun run;
  const int64_t t0 = core::monotonic_now_ns(), cpu0 = core::process_cpu_ns();
  const int64_t end = t0 + int64_t(seconds * 1e9);
  while (core::monotonic_now_ns() < end) {
    for (int b = 0; b < kBands; ++b)
      peer.update_no_reply(0, b * kBand, kWidth, kBand, kWidth * 4, patterns[size_t(run.guest_frames + b) % 4]);
    run.updates += kBands;
    ++run.guest_frames;
    const uint64_t expected = run.guest_frames + 1;  // + the Scanout
    const int64_t deadline = core::monotonic_now_ns() + 5'000'000'000;
    while (taken.load() < expected && core::monotonic_now_ns() < deadline) std::this_thread::yield();
    REQUIRE(taken.load() >= expected);
  }
  run.seconds = double(core::monotonic_now_ns() - t0) / 1e9;
  run.cpu_seconds = double(core::process_cpu_ns() - cpu0) / 1e9;
  return run;
}

}  // namespace

TEST_CASE("benchmark: the Update path at 1080p against the synthetic source on the same encoder", "[.][benchmark]") {
  const std::vector<uint8_t> black(size_t(kWidth) * kHeight * 4);
  {
    std::atomic<uint64_t> taken{0};
    test::ListenerPeer peer({}, [&](const core::Frame&) { ++taken; }, false);
    REQUIRE(peer.scanout(kWidth, kHeight, kWidth * 4, black).ok());
    UpdateRun r = send_guest_frames(peer, taken, 3.0);
    const double mb = double(r.updates) * kWidth * kBand * 4 / 1e6;
    WARN(fmt::format("listener only: {} Updates of {}x{} in {:.2f} s = {:.0f} Updates/s, {:.0f} MB/s, {:.1f} guest frames/s "
                     "(full screen each); CPU {:.3f} ms per Update, {:.2f} ms per guest frame (peer marshalling included)",
                     r.updates, kWidth, kBand, r.seconds, double(r.updates) / r.seconds, mb / r.seconds,
                     double(r.guest_frames) / r.seconds, r.cpu_seconds * 1e3 / double(r.updates),
                     r.cpu_seconds * 1e3 / double(r.guest_frames)));
  }
  {
    auto pipeline = make_pipeline();
    auto sink = std::make_shared<test::CollectingSink>();
    pipeline->add_sink(sink);
    pipeline->start();
    std::atomic<uint64_t> taken{0};
    test::ListenerPeer peer({}, [&](const core::Frame& f) {
      pipeline->submit(f);
      ++taken;
    }, false);
    REQUIRE(peer.scanout(kWidth, kHeight, kWidth * 4, black).ok());
    UpdateRun r = send_guest_frames(peer, taken, 3.0);
    REQUIRE(pipeline->wait_idle(10s));
    pipeline->stop();
    auto st = pipeline->stats();
    WARN(fmt::format("QEMU Update path → x264 1080p: {:.1f} guest frames/s delivered, {:.1f} encoded fps, "
                     "{} of {} frames replaced in the slot; CPU {:.1f} ms per encoded frame; encode p50 {:.1f} ms, "
                     "captured→encoded p50 {:.1f} ms",
                     double(r.guest_frames) / r.seconds, double(st.frames_encoded) / r.seconds, st.frames_replaced,
                     st.frames_captured, r.cpu_seconds * 1e3 / double(std::max<uint64_t>(1, st.frames_encoded)),
                     st.encode.percentile_ms(50), st.total.percentile_ms(50)));
    CHECK(st.frames_encoded > 0);
  }
  {
    capture::SyntheticConfig config;
    config.workload = capture::Workload::FullMotion;
    config.width = kWidth;
    config.height = kHeight;
    config.fps = 60;
    auto source = capture::SyntheticSource::create(config);
    REQUIRE(source.ok());
    auto pipeline = make_pipeline();
    auto sink = std::make_shared<test::CollectingSink>();
    pipeline->add_sink(sink);
    pipeline->start();
    capture::SourceCallbacks cb;
    cb.on_frame = [&](core::Frame f) { pipeline->submit(std::move(f)); };
    const int64_t t0 = core::monotonic_now_ns(), cpu0 = core::process_cpu_ns();
    (*source)->set_max_frames(180);
    REQUIRE((*source)->start(cb).ok());
    while (!(*source)->finished() && core::monotonic_now_ns() - t0 < 10'000'000'000) std::this_thread::sleep_for(10ms);
    (*source)->stop();
    REQUIRE(pipeline->wait_idle(10s));
    pipeline->stop();
    const double seconds = double(core::monotonic_now_ns() - t0) / 1e9;
    const double cpu = double(core::process_cpu_ns() - cpu0 - (*source)->render_cpu_ns()) / 1e9;
    auto st = pipeline->stats();
    WARN(fmt::format("synthetic fullmotion@1920x1080@60 → x264: {:.1f} encoded fps, {} of {} replaced; CPU {:.1f} ms per "
                     "encoded frame (drawing excluded); encode p50 {:.1f} ms, captured→encoded p50 {:.1f} ms",
                     double(st.frames_encoded) / seconds, st.frames_replaced, st.frames_captured,
                     cpu * 1e3 / double(std::max<uint64_t>(1, st.frames_encoded)), st.encode.percentile_ms(50),
                     st.total.percentile_ms(50)));
  }
}
