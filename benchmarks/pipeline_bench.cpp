#include "benchmarks/pipeline_bench.hpp"

#include <fmt/format.h>

#include <atomic>
#include <thread>

#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "encode/pipeline.hpp"

namespace vdistream::bench {

namespace {

class CountingSink : public core::EncodedSink {
 public:
  void on_encoded(const core::EncodedFramePtr& f) override { bytes += f->data.size(); }
  std::atomic<uint64_t> bytes{0};
};

nlohmann::json histogram_json(const core::LatencyHistogram& h) {
  return {{"count", h.count()},           {"p50_ms", h.percentile_ms(50)}, {"p95_ms", h.percentile_ms(95)},
          {"p99_ms", h.percentile_ms(99)}, {"max_ms", double(h.max_ns()) / 1e6}, {"mean_ms", h.mean_ns() / 1e6}};
}

core::Result<nlohmann::json> run_one(const PipelineBenchOptions& o, const std::string& workload,
                                     const std::string& size) {
  auto config = capture::parse_synthetic_spec(fmt::format("synthetic:{}@{}@{}", workload, size, o.fps));
  if (!config) return core::Error{config.error()};
  config->pool_size = 4;
  auto source = capture::SyntheticSource::create(*config);
  if (!source) return core::Error{source.error()};

  encode::PipelineConfig pc;
  pc.name = "bench";
  pc.encoder.fps = o.fps;
  pc.encoder.bitrate_bps = o.bitrate_kbps * 1000;
  pc.encoder.software_preset = o.preset;
  pc.encoder.threads = o.threads;
  auto pipeline = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
  if (!pipeline) return core::Error{pipeline.error()};
  auto sink = std::make_shared<CountingSink>();
  (*pipeline)->add_sink(sink);
  (*pipeline)->start();

  const uint64_t frames = uint64_t((o.seconds + o.warmup) * o.fps);
  (*source)->set_max_frames(frames);
  capture::SourceCallbacks cb;
  cb.on_frame = [&](core::Frame f) { (*pipeline)->submit(std::move(f)); };
  // Everything but the synthetic desktop's drawing (which stands in for the VM's work): the
  // encode thread, x264's slice threads, this thread's polling.
  auto pipeline_cpu_ns = [&] { return core::process_cpu_ns() - (*source)->render_cpu_ns(); };
  const int64_t t0 = core::monotonic_now_ns();
  if (core::Status s = (*source)->start(cb); !s) return core::Error{s.error()};
  // The measured window starts after the warm-up (encoder start, first IDR).
  int64_t window_t0 = t0, window_cpu0 = pipeline_cpu_ns();
  encode::PipelineStats at_warm = (*pipeline)->stats();
  bool warm = o.warmup <= 0;
  while (!(*source)->finished()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // rare wake-ups: idle CPU is measured
    if (!warm && core::monotonic_now_ns() - t0 >= int64_t(o.warmup * 1e9)) {
      (*pipeline)->reset_latency();
      at_warm = (*pipeline)->stats();
      window_t0 = core::monotonic_now_ns();
      window_cpu0 = pipeline_cpu_ns();
      warm = true;
    }
  }
  (*source)->stop();
  (*pipeline)->wait_idle(std::chrono::seconds(30));
  const double wall = double(core::monotonic_now_ns() - window_t0) / 1e9;
  const double cpu = double(pipeline_cpu_ns() - window_cpu0) / 1e9;
  (*pipeline)->stop();
  auto s = (*pipeline)->stats();

  const double encoded = double(s.frames_encoded - at_warm.frames_encoded);
  const double bytes = double(s.bytes_out - at_warm.bytes_out);
  return nlohmann::json{
      {"workload", workload},
      {"size", size},
      {"target_fps", o.fps},
      {"warmup_seconds", o.warmup},
      {"seconds", wall},
      {"frames_captured", s.frames_captured},
      {"frames_encoded", s.frames_encoded},
      {"frames_skipped", s.frames_skipped},
      {"frames_replaced", s.frames_replaced},
      {"keyframes", s.keyframes},
      {"encoded_fps", encoded / wall},
      {"bitrate_mbps", bytes * 8 / wall / 1e6},
      {"full_frame_copies", s.full_frame_copies},
      {"pipeline_cpu_percent", cpu / wall * 100},
      {"pipeline_cpu_ms_per_encoded_frame", encoded > 0 ? cpu * 1e3 / encoded : 0.0},
      {"latency",
       {{"captured_to_dequeued", histogram_json(s.wait)},
        {"dequeued_to_converted", histogram_json(s.convert)},
        {"converted_to_encoded", histogram_json(s.encode)},
        {"captured_to_encoded", histogram_json(s.total)}}},
      {"encoder", (*pipeline)->encoder_name()}};
}

}  // namespace

nlohmann::json run_pipeline_bench(const PipelineBenchOptions& o) {
  nlohmann::json runs = nlohmann::json::array();
  fmt::print("{:<12} {:>9} {:>7} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}\n", "workload", "size", "enc fps",
             "Mbit/s", "drops", "p50 ms", "p95 ms", "p99 ms", "max ms", "cpu/frame", "cpu %");
  for (const auto& size : o.sizes)
    for (const auto& workload : o.workloads) {
      auto r = run_one(o, workload, size);
      if (!r) {
        fmt::print(stderr, "{} {}: {}\n", workload, size, r.error());
        runs.push_back({{"workload", workload}, {"size", size}, {"error", r.error()}});
        continue;
      }
      const auto& j = *r;
      const auto& t = j["latency"]["captured_to_encoded"];
      fmt::print("{:<12} {:>9} {:>7.1f} {:>7.2f} {:>6} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>7.2f}ms {:>8.1f}%\n",
                 workload, size, j["encoded_fps"].get<double>(), j["bitrate_mbps"].get<double>(),
                 j["frames_replaced"].get<uint64_t>(), t["p50_ms"].get<double>(), t["p95_ms"].get<double>(),
                 t["p99_ms"].get<double>(), t["max_ms"].get<double>(), j["pipeline_cpu_ms_per_encoded_frame"].get<double>(),
                 j["pipeline_cpu_percent"].get<double>());
      std::fflush(stdout);
      runs.push_back(j);
    }
  return runs;
}

}  // namespace vdistream::bench
