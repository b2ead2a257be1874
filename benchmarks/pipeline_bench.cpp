#include "benchmarks/pipeline_bench.hpp"

#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "encode/decoder.hpp"
#include "encode/pipeline.hpp"

namespace vdistream::bench {

namespace {

// Keeps every access unit (decoded after the run, so decoding costs the measurement nothing).
class RecordingSink : public core::EncodedSink {
 public:
  void on_encoded(const core::EncodedFramePtr& f) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(f);
  }
  std::vector<core::EncodedFramePtr> take() {
    std::lock_guard lock(mutex_);
    return std::move(frames_);
  }

 private:
  std::mutex mutex_;
  std::vector<core::EncodedFramePtr> frames_;
};

Run run_one(const PipelineBenchOptions& o, const std::string& workload, const std::string& size, Progress& progress,
            double& seconds_done, double seconds_total) {
  Run run;
  run.implementation = "vdistream-pipeline";
  run.workload = workload;
  run.size = size;
  run.fps = o.fps;
  run.stages = {"dequeue", "convert", "encode"};
  auto config = capture::parse_synthetic_spec(fmt::format("synthetic:{}@{}@{}", workload, size, o.fps));
  if (!config) return run.error = config.error(), run;
  config->pool_size = 4;
  auto source = capture::SyntheticSource::create(*config);
  if (!source) return run.error = source.error(), run;

  encode::PipelineConfig pc;
  pc.name = "bench";
  pc.encoder.fps = o.fps;
  pc.encoder.bitrate_bps = o.bitrate_kbps * 1000;
  pc.encoder.software_preset = o.preset;
  pc.encoder.threads = o.threads;
  auto pipeline = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
  if (!pipeline) return run.error = pipeline.error(), run;
  auto sink = std::make_shared<RecordingSink>();
  (*pipeline)->add_sink(sink);
  (*pipeline)->start();

  const uint64_t frames = uint64_t((o.seconds + o.warmup) * o.fps);
  (*source)->set_max_frames(frames);
  // The barcode each frame's picture carries: the number of the last frame that changed anything.
  std::vector<uint32_t> barcode_of(frames + 1, 0);
  uint32_t last_changed = 0;
  capture::SourceCallbacks cb;
  cb.on_frame = [&](core::Frame f) {
    if (!f.damage.empty()) last_changed = uint32_t(f.sequence);
    if (f.sequence < barcode_of.size()) barcode_of[f.sequence] = last_changed;
    (*pipeline)->submit(std::move(f));
  };
  // Everything but the synthetic desktop's drawing (which stands in for the VM's work): the
  // encode thread, x264's slice threads, this thread's polling.
  auto pipeline_cpu_ns = [&] { return core::process_cpu_ns() - (*source)->render_cpu_ns(); };
  const int64_t t0 = core::monotonic_now_ns();
  if (core::Status s = (*source)->start(cb); !s) return run.error = s.error(), run;
  // The measured window starts after the warm-up (encoder start, first IDR).
  int64_t window_t0 = t0, window_cpu0 = pipeline_cpu_ns();
  encode::PipelineStats at_warm = (*pipeline)->stats();
  bool warm = o.warmup <= 0;
  const std::string what = fmt::format("pipeline {} {}", workload, size);
  while (!(*source)->finished()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // rare wake-ups: idle CPU is measured
    const double elapsed = double(core::monotonic_now_ns() - t0) / 1e9;
    progress.update(uint64_t((seconds_done + elapsed) * 1000), what);
    if (!warm && elapsed >= o.warmup) {
      at_warm = (*pipeline)->stats();
      window_t0 = core::monotonic_now_ns();
      window_cpu0 = pipeline_cpu_ns();
      warm = true;
    }
  }
  (*source)->stop();
  const bool idle = (*pipeline)->wait_idle(std::chrono::seconds(30));
  const double wall = double(core::monotonic_now_ns() - window_t0) / 1e9;
  const double cpu = double(pipeline_cpu_ns() - window_cpu0) / 1e9;
  (*pipeline)->stop();
  seconds_done += o.seconds + o.warmup;
  progress.update(uint64_t(seconds_done * 1000), what);
  const encode::PipelineStats s = (*pipeline)->stats();
  (void)seconds_total;

  // Decode every access unit in order, as a client would, and read its barcode.
  std::vector<core::EncodedFramePtr> aus = sink->take();
  auto decoder = encode::Decoder::create(core::Codec::H264);
  if (!decoder) return run.error = decoder.error(), run;
  for (const core::EncodedFramePtr& au : aus) {
    auto pictures = (*decoder)->decode(au->data, int64_t(au->sequence));
    const core::FrameTimestamps& ts = au->timestamps;
    if (ts.captured_ns < window_t0) continue;  // warm-up
    FrameSample f;
    f.sequence = au->sequence;
    f.t_s = double(ts.captured_ns - window_t0) / 1e9;
    f.end_ms = {double(ts.dequeued_ns - ts.captured_ns) / 1e6, double(ts.converted_ns - ts.captured_ns) / 1e6,
                double(ts.encoded_ns - ts.captured_ns) / 1e6};
    f.bytes = au->data.size();
    if (au->sequence < barcode_of.size()) f.barcode_sent = barcode_of[au->sequence];
    if (pictures && !pictures->empty()) {
      const encode::DecodedPicture& p = pictures->back();
      f.barcode_read = capture::Barcode::read_luma(p.y.data(), uint32_t(p.width), p.width, p.height);
    }
    run.frames.push_back(std::move(f));
  }
  run.barcodes_expected = run.frames.size();
  run.frames_produced = uint64_t(double(s.frames_captured - at_warm.frames_captured));
  const double encoded = double(s.frames_encoded - at_warm.frames_encoded);
  const double bytes = double(s.bytes_out - at_warm.bytes_out);
  run.counters = {{"source_frames", (*source)->next_sequence()},
                  {"frames_captured", s.frames_captured},
                  {"frames_encoded", s.frames_encoded},
                  {"frames_skipped", s.frames_skipped},
                  {"frames_replaced", s.frames_replaced},
                  {"frames_unwatched", s.frames_unwatched},
                  {"keepalives", s.keepalives},
                  {"keyframes", s.keyframes},
                  {"encode_errors", s.encode_errors},
                  {"full_frame_copies", s.full_frame_copies},
                  {"tiles_converted", s.tiles_converted},
                  {"access_units_received", aus.size()},
                  {"decoder_errors", (*decoder)->errors()},
                  {"source_ticks_skipped_busy", (*source)->ticks_skipped_busy()},
                  {"source_ticks_skipped_late", (*source)->ticks_skipped_late()},
                  {"drained", idle},
                  {"window_seconds", wall},
                  {"encoded_fps", encoded / wall},
                  {"bitrate_mbps", bytes * 8 / wall / 1e6},
                  {"pipeline_cpu_percent", cpu / wall * 100},
                  {"pipeline_cpu_ms_per_encoded_frame", encoded > 0 ? cpu * 1e3 / encoded : 0.0},
                  {"encoder", (*pipeline)->encoder_name()}};
  progress.finish_step(run.label());
  return run;
}

}  // namespace

double pipeline_bench_seconds(const PipelineBenchOptions& o) {
  return double(o.workloads.size() * o.sizes.size()) * (o.seconds + o.warmup);
}

std::vector<Run> run_pipeline_bench(const PipelineBenchOptions& o, Progress& progress) {
  std::vector<Run> runs;
  double done = 0;
  const double total = pipeline_bench_seconds(o);
  for (const auto& size : o.sizes)
    for (const auto& workload : o.workloads) runs.push_back(run_one(o, workload, size, progress, done, total));
  return runs;
}

void print_pipeline_table(const PipelineBenchOptions& o, const std::vector<Run>& runs) {
  fmt::print("pipeline: {} fps, {:.1f} s per run after {:.1f} s warm-up, x264 {} with {} threads, {} kbit/s\n", o.fps, o.seconds,
             o.warmup, o.preset, o.threads, o.bitrate_kbps);
  fmt::print("{:<12} {:>9} {:>7} {:>7} {:>5} {:>5} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>6} {:>9}\n", "workload",
             "size", "enc fps", "Mbit/s", "drops", "skips", "copies", "wait", "convert", "encode", "p50 ms", "p99 ms", "max ms",
             "cpu/frame", "cpu %", "barcodes");
  for (const Run& r : runs) {
    if (!r.error.empty()) {
      fmt::print("{:<12} {:>9} error: {}\n", r.workload, r.size, r.error);
      continue;
    }
    const auto& c = r.counters;
    const Percentiles t = percentiles(totals(r));
    fmt::print("{:<12} {:>9} {:>7.1f} {:>7.2f} {:>5} {:>5} {:>6} {:>7.2f} {:>7.2f} {:>7.2f} {:>7.2f} {:>7.2f} {:>7.2f} {:>7.2f}ms "
               "{:>5.1f}% {:>4}/{:<4}\n",
               r.workload, r.size, c["encoded_fps"].get<double>(), c["bitrate_mbps"].get<double>(),
               c["frames_replaced"].get<uint64_t>(), c["frames_skipped"].get<uint64_t>(), c["full_frame_copies"].get<uint64_t>(),
               percentiles(stage_durations(r, 0)).p50, percentiles(stage_durations(r, 1)).p50,
               percentiles(stage_durations(r, 2)).p50, t.p50, t.p99, t.max,
               c["pipeline_cpu_ms_per_encoded_frame"].get<double>(), c["pipeline_cpu_percent"].get<double>(), barcodes_read(r),
               r.barcodes_expected);
  }
  fmt::print("(wait/convert/encode: p50 ms of each stage alone; p50/p99/max: captured → encoded)\n");
}

}  // namespace vdistream::bench
