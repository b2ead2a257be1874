#include "benchmarks/spice_bench.hpp"

#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "benchmarks/spice_viewer.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "encode/pipeline.hpp"
#include "spice/spice_desktop.hpp"

namespace vdistream::bench {

namespace {

using namespace std::chrono_literals;

// A private directory for the server's unix socket, removed afterwards.
class SocketDir {
 public:
  SocketDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vdistream-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~SocketDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// When each access unit left the encoder, by the frame number it came from (stream mode).
class EncodedTimes : public core::EncodedSink {
 public:
  void on_encoded(const core::EncodedFramePtr& f) override {
    std::lock_guard lock(mutex_);
    encoded_ns_.emplace(f->sequence, f->timestamps.encoded_ns);
  }
  std::map<uint64_t, int64_t> take() {
    std::lock_guard lock(mutex_);
    return std::move(encoded_ns_);
  }

 private:
  std::mutex mutex_;
  std::map<uint64_t, int64_t> encoded_ns_;
};

std::string random_ticket() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

Run run_one(const SpiceBenchOptions& o, const std::string& mode, const std::string& workload, const std::string& size,
            Progress& progress, double& seconds_done) {
  Run run;
  run.implementation = "spice-" + mode;
  run.workload = workload;
  run.size = size;
  run.fps = o.fps;
  const bool stream = mode == "stream";
  // QXL mode has one stage: on_frame() posts the drawables to the desktop's thread before it
  // returns, so the client may show a frame before the call has returned; its duration goes to
  // the counters instead.
  run.stages = stream ? std::vector<std::string>{"encode", "show"} : std::vector<std::string>{"show"};
  auto spice_mode = spice::parse_spice_mode(mode);
  if (!spice_mode) return run.error = spice_mode.error(), run;
  auto config = capture::parse_synthetic_spec(fmt::format("synthetic:{}@{}@{}", workload, size, o.fps));
  if (!config) return run.error = config.error(), run;
  config->pool_size = 4;
  auto source = capture::SyntheticSource::create(*config);
  if (!source) return run.error = source.error(), run;

  std::unique_ptr<encode::DesktopPipeline> pipeline;
  auto encoded_times = std::make_shared<EncodedTimes>();
  if (stream) {
    encode::PipelineConfig pc;
    pc.name = "bench-spice";
    pc.encoder.fps = o.fps;
    pc.encoder.bitrate_bps = o.bitrate_kbps * 1000;
    auto p = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
    if (!p) return run.error = p.error(), run;
    pipeline = std::move(*p);
  }
  SocketDir dir;
  if (dir.path().empty()) return run.error = "cannot create a directory for the SPICE socket", run;
  spice::SpiceConfig sc;
  sc.name = "bench-spice";
  sc.mode = *spice_mode;
  sc.listen.unix_path = dir.path() + "/spice.sock";
  const std::string ticket = random_ticket();
  sc.ticket = spice::Ticket{ticket, 0};
  auto desktop = spice::SpiceDesktop::create(sc, nullptr, pipeline.get());
  if (!desktop) return run.error = desktop.error(), run;
  if (pipeline) {
    pipeline->add_sink((*desktop)->stream_sink());
    pipeline->add_sink(encoded_times);
    pipeline->start();
  }

  SpiceViewer viewer({sc.listen.unix_path, "", 0, ticket});
  if (!viewer.wait_opened(10s)) return run.error = "the spice-glib client could not connect", run;

  const uint64_t frames = uint64_t((o.seconds + o.warmup) * o.fps);
  std::vector<int64_t> captured(frames + 1, 0), handed(frames + 1, 0);
  std::vector<uint32_t> barcode_of(frames + 1, 0);
  std::vector<bool> changed(frames + 1, false);
  uint32_t last_changed = 0;
  std::string frame_error;
  capture::SourceCallbacks cb;
  cb.on_frame = [&](core::Frame f) {
    const uint64_t seq = f.sequence;
    if (seq >= captured.size()) return;
    captured[seq] = f.timestamps.captured_ns;
    if (!f.damage.empty()) last_changed = uint32_t(seq), changed[seq] = true;
    barcode_of[seq] = last_changed;
    if (pipeline) {
      pipeline->submit(std::move(f));
    } else if (core::Status s = (*desktop)->on_frame(f); !s && frame_error.empty()) {
      frame_error = s.error();
    }
    handed[seq] = core::monotonic_now_ns();
  };
  (*source)->set_max_frames(frames);
  const int64_t t0 = core::monotonic_now_ns();
  if (core::Status s = (*source)->start(cb); !s) return run.error = s.error(), run;
  const std::string what = fmt::format("spice {} {} {}", mode, workload, size);
  while (!(*source)->finished()) {
    std::this_thread::sleep_for(50ms);
    progress.update(uint64_t((seconds_done + double(core::monotonic_now_ns() - t0) / 1e9) * 1000), what);
  }
  (*source)->stop();
  // The last picture reaches the client after the server's and client's delays (stream mode:
  // spice-glib's 400 ms playout offset); wait for it, bounded.
  const bool last_shown = viewer.wait_barcode(last_changed, stream ? 10s : 5s);
  // On the wire: the display channel's bytes over the whole run, the first full picture included.
  const double run_s = double(core::monotonic_now_ns() - t0) / 1e9;
  const uint64_t wire_bytes = viewer.display_bytes_read();
  const double wire_kbps = run_s > 0 ? double(wire_bytes) * 8 / run_s / 1000 : 0;
  if (pipeline) pipeline->stop();
  seconds_done += o.seconds + o.warmup;
  const auto seen = viewer.barcodes();
  const auto encoded = encoded_times->take();
  // When each barcode first left the encoder (stream mode).
  std::map<uint32_t, int64_t> encoded_by_barcode;
  for (const auto& [seq, at] : encoded)
    if (seq < barcode_of.size() && !encoded_by_barcode.count(barcode_of[seq])) encoded_by_barcode[barcode_of[seq]] = at;

  // The measured window: every frame after the warm-up's, by frame number.
  const uint64_t first = std::min<uint64_t>(frames, uint64_t(o.warmup * o.fps + 0.5));
  const int64_t window_t0 = first < frames ? captured[first] : t0;
  for (uint64_t seq = first; seq < frames; ++seq) {
    if (captured[seq]) ++run.frames_produced;
    if (changed[seq] && (!stream || encoded_by_barcode.count(uint32_t(seq)))) ++run.barcodes_expected;
  }
  uint64_t out_of_order = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    const uint32_t b = seen[i].barcode;
    if (i > 0 && b <= seen[i - 1].barcode) ++out_of_order;
    if (b >= frames || b < first || !captured[b]) continue;
    FrameSample f;
    f.sequence = b;
    f.t_s = double(captured[b] - window_t0) / 1e9;
    const double shown_ms = double(seen[i].at_ns - captured[b]) / 1e6;
    if (stream) {
      if (!encoded_by_barcode.count(b)) continue;  // not encoded under this number (merged into a later frame)
      f.end_ms = {double(encoded_by_barcode[b] - captured[b]) / 1e6, shown_ms};
    } else {
      f.end_ms = {shown_ms};
    }
    f.barcode_sent = b;
    f.barcode_read = b;
    run.frames.push_back(std::move(f));
  }
  std::vector<double> call_ms;
  for (uint64_t seq = first; seq < frames; ++seq)
    if (captured[seq] && handed[seq]) call_ms.push_back(double(handed[seq] - captured[seq]) / 1e6);
  const Percentiles call = percentiles(call_ms);
  const auto qxl = (*desktop)->stats();
  const auto st = (*desktop)->stream_stats();
  run.counters = {{"source_frames", (*source)->next_sequence()},
                  {"barcodes_shown_total", seen.size()},
                  {"display_bytes_read", wire_bytes},
                  {"wire_kbps", wire_kbps},
                  {"out_of_order", out_of_order},
                  {"last_frame_shown", last_shown},
                  {stream ? "submit_ms" : "on_frame_ms", {{"p50", call.p50}, {"p99", call.p99}, {"max", call.max}}},
                  {"qxl_frames", qxl.frames},
                  {"qxl_drawables", qxl.drawables},
                  {"qxl_bytes_copied", qxl.bytes_copied},
                  {"qxl_queue_overflows", qxl.queue_overflows},
                  {"stream_access_units_sent", st.access_units_sent},
                  {"stream_dropped", st.dropped}};
  if (pipeline) {
    const auto ps = pipeline->stats();
    run.counters["frames_replaced"] = ps.frames_replaced;
    run.counters["frames_skipped"] = ps.frames_skipped;
    run.counters["frames_encoded"] = ps.frames_encoded;
    run.counters["encode_bytes"] = ps.bytes_out;
  }
  if (!frame_error.empty()) run.error = frame_error;
  else if (!last_shown) run.error = fmt::format("the client never showed the last frame ({})", last_changed);
  desktop->reset();  // the server goes before the pipeline that feeds it
  progress.finish_step(run.label());
  return run;
}

}  // namespace

double spice_bench_seconds(const SpiceBenchOptions& o) {
  return double(o.modes.size() * o.workloads.size() * o.sizes.size()) * (o.seconds + o.warmup);
}

std::vector<Run> run_spice_bench(const SpiceBenchOptions& o, Progress& progress) {
  std::vector<Run> runs;
  double done = 0;
  for (const auto& mode : o.modes)
    for (const auto& size : o.sizes)
      for (const auto& workload : o.workloads) runs.push_back(run_one(o, mode, workload, size, progress, done));
  return runs;
}

void print_spice_table(const SpiceBenchOptions& o, const std::vector<Run>& runs) {
  fmt::print("spice: {} fps, {:.1f} s per run after {:.1f} s warm-up, spice-glib client over a unix socket; glass to glass = "
             "drawn → shown in the client's surface\n",
             o.fps, o.seconds, o.warmup);
  fmt::print("{:<13} {:<12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}\n", "mode", "workload", "size", "1st stage",
             "p50 ms", "p95 ms", "p99 ms", "max ms", "barcodes", "wire kb/s");
  for (const Run& r : runs) {
    if (r.frames.empty()) {
      fmt::print("{:<13} {:<12} {:>9} error: {}\n", r.implementation, r.workload, r.size, r.error);
      continue;
    }
    const Percentiles t = percentiles(totals(r));
    const std::string first =
        r.stages.size() > 1 ? fmt::format("{:.2f}", percentiles(stage_durations(r, 0)).p50) : std::string("-");
    fmt::print("{:<13} {:<12} {:>9} {:>9} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>4}/{:<4} {:>9.0f}\n", r.implementation,
               r.workload, r.size, first, t.p50, t.p95, t.p99, t.max, barcodes_read(r), r.barcodes_expected,
               r.counters.value("wire_kbps", 0.0));
    if (!r.error.empty()) fmt::print("  error: {}\n", r.error);
  }
  fmt::print("(1st stage, stream mode: p50 ms drawn → encoded; p50..max: drawn → shown in the client; wire kb/s: kbit/s the "
             "client's display channel read over the run)\n");
}

}  // namespace vdistream::bench
