#include "benchmarks/spice_bench.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "benchmarks/private_dir.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "benchmarks/clients/remote_viewer.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "encode/pipeline.hpp"
#include "spice/spice_desktop.hpp"

namespace vdistream::bench {

namespace {

using namespace std::chrono_literals;

// When each access unit (or JPEG) left the encoder, by the frame number it came from (stream mode).
class EncodedTimes {
 public:
  void record(const core::EncodedFrame& f) {
    std::lock_guard lock(mutex_);
    encoded_ns_.emplace(f.sequence, f.timestamps.encoded_ns);
  }
  std::map<uint64_t, int64_t> take() {
    std::lock_guard lock(mutex_);
    return std::move(encoded_ns_);
  }

 private:
  std::mutex mutex_;
  std::map<uint64_t, int64_t> encoded_ns_;
};

// Between the pipeline and one of the stream device's sinks: notes the time, changes nothing
// (the encoder still rests while the client does not stream this codec).
class TimedSink : public core::EncodedSink {
 public:
  TimedSink(std::shared_ptr<core::EncodedSink> inner, std::shared_ptr<EncodedTimes> times)
      : inner_(std::move(inner)), times_(std::move(times)) {}
  void on_encoded(const core::EncodedFramePtr& f) override {
    times_->record(*f);
    inner_->on_encoded(f);
  }
  bool wants_frames() const override { return inner_->wants_frames(); }
  bool wants_trailing_frame() const override { return inner_->wants_trailing_frame(); }

 private:
  std::shared_ptr<core::EncodedSink> inner_;
  std::shared_ptr<EncodedTimes> times_;
};

// When a client first showed a barcode.
struct Sighting {
  uint32_t barcode;
  int64_t at_ns;  // core::monotonic_now_ns()
};

// The client a run measures with, as the run sees it.
class GlassClient {
 public:
  virtual ~GlassClient() = default;
  // Connected and showing the desktop. `show_frame` hands the server one more frame: a client
  // that must see a picture before the measurement starts calls it while it waits.
  virtual core::Status ready(const std::function<void()>& show_frame) = 0;
  virtual bool wait_barcode(uint32_t value, std::chrono::milliseconds limit) = 0;
  virtual std::vector<Sighting> sightings() const = 0;
  // After the run: this client's own figures into the counters; an error if its measurement broke.
  virtual core::Status finish(double run_seconds, nlohmann::json& counters) = 0;
};

// spice-glib in this process: the barcode is read from the decoded surface on every update.
class GlibClient final : public GlassClient {
 public:
  GlibClient(const std::string& unix_path, const std::string& ticket) : viewer_(SpiceClientOptions{.unix_path = unix_path, .password = ticket}) {}
  core::Status ready(const std::function<void()>&) override {
    if (!viewer_.wait_opened(10s)) return core::Error{"the spice-glib client could not connect"};
    return {};
  }
  bool wait_barcode(uint32_t value, std::chrono::milliseconds limit) override { return viewer_.wait_barcode(value, limit); }
  std::vector<Sighting> sightings() const override {
    std::vector<Sighting> out;
    for (const auto& seen : viewer_.barcodes()) out.push_back({seen.barcode, seen.at_ns});
    return out;
  }
  // On the wire: the display channel's bytes over the whole run, the first full picture included.
  core::Status finish(double run_seconds, nlohmann::json& counters) override {
    const uint64_t bytes = viewer_.display_bytes_read();
    counters["display_bytes_read"] = bytes;
    counters["wire_kbps"] = run_seconds > 0 ? double(bytes) * 8 / run_seconds / 1000 : 0;
    return {};
  }

 private:
  SpiceClient viewer_;
};

// remote-viewer in its own Xvfb: the barcode is polled from the screen. The desktop shows
// frames (at 10 fps) until the barcode is found and then until the picture has advanced a few
// times: in stream mode remote-viewer's GStreamer pipeline drops everything for about a second
// after the stream starts (its first buffers look late to the sink's QoS), which belongs to the
// client's start, not to the measured run.
class RemoteViewerClient final : public GlassClient {
 public:
  explicit RemoteViewerClient(const RemoteViewer::Options& options) : options_(options) {}
  core::Status ready(const std::function<void()>& show_frame) override {
    auto viewer = RemoteViewer::launch(options_);
    if (!viewer) return core::Error{viewer.error()};
    viewer_ = std::move(*viewer);
    show_frame();
    if (core::Status s = viewer_->locate(20s, show_frame); !s) return s;
    if (core::Status s = viewer_->screen().start_polling(); !s) return s;
    constexpr size_t kSettledAfter = 4;  // distinct barcodes on the screen
    const int64_t deadline = core::monotonic_now_ns() + 15'000'000'000;
    while (viewer_->screen().barcodes().size() < kSettledAfter) {
      if (core::monotonic_now_ns() > deadline)
        return core::Error{fmt::format("remote-viewer showed the desktop but its picture did not advance within 15 s "
                                       "({} distinct barcodes seen):\n{}",
                                       viewer_->screen().barcodes().size(), viewer_->log_tail())};
      show_frame();
      std::this_thread::sleep_for(100ms);
    }
    return {};
  }
  bool wait_barcode(uint32_t value, std::chrono::milliseconds limit) override {
    return viewer_ && viewer_->screen().wait_barcode(value, limit);
  }
  std::vector<Sighting> sightings() const override {
    std::vector<Sighting> out;
    if (viewer_)
      for (const auto& seen : viewer_->screen().barcodes()) out.push_back({seen.barcode, seen.at_ns});
    return out;
  }
  // The resolution of the measurement: each latency is late by up to one poll interval.
  core::Status finish(double, nlohmann::json& counters) override {
    if (!viewer_) return core::Error{"remote-viewer was not started"};
    const X11Screen::PollStats poll = viewer_->screen().stop_polling();
    counters["polls"] = poll.polls;
    counters["poll_interval_ms"] = {{"p50", poll.interval_ms.p50}, {"p99", poll.interval_ms.p99}, {"max", poll.interval_ms.max}};
    counters["poll_grab_ms"] = {{"p50", poll.grab_ms.p50}, {"p99", poll.grab_ms.p99}, {"max", poll.grab_ms.max}};
    counters["barcode_on_screen"] = {viewer_->screen().barcode_x(), viewer_->screen().barcode_y()};
    counters["viewer_window"] = viewer_->window_size();
    if (!poll.error.empty()) return core::Error{"polling remote-viewer's screen stopped: " + poll.error};
    return {};
  }

 private:
  RemoteViewer::Options options_;
  std::unique_ptr<RemoteViewer> viewer_;
};

std::string random_ticket() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

std::string implementation_label(const SpiceBenchOptions& o, const std::string& client, const std::string& mode) {
  std::string label = "spice-" + mode;
  if (mode == "stream" && o.trailing_delimiter) label += "-delimiter";
  if (client != "glib") label += "/" + client;  // the in-process spice-glib client keeps the plain name
  return label;
}

Run run_one(const SpiceBenchOptions& o, const std::string& client_name, const std::string& mode, const std::string& workload,
            const std::string& size, Progress& progress, double& seconds_done) {
  Run run;
  run.implementation = implementation_label(o, client_name, mode);
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
  const bool remote_viewer = client_name == "remote-viewer" || client_name == "remote-viewer-mjpeg";
  if (client_name != "glib" && !remote_viewer)
    return run.error = "unknown client '" + client_name + "' (glib, remote-viewer, remote-viewer-mjpeg)", run;
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
  PrivateDir dir;  // the server's unix socket
  if (dir.path().empty()) return run.error = "cannot create a directory for the SPICE socket", run;
  spice::SpiceConfig sc;
  sc.name = "bench-spice";
  sc.mode = *spice_mode;
  sc.listen.unix_path = dir.path() + "/spice.sock";
  sc.stream_trailing_delimiter = o.trailing_delimiter;
  const std::string ticket = random_ticket();
  sc.ticket = spice::Ticket{ticket, 0};
  auto desktop = spice::SpiceDesktop::create(sc, nullptr, pipeline.get());
  if (!desktop) return run.error = desktop.error(), run;
  if (pipeline) {
    pipeline->add_sink(std::make_shared<TimedSink>((*desktop)->stream_sink(), encoded_times));
    // MJPEG for a client without an H.264 decoder (remote-viewer-mjpeg).
    if (core::Status s = pipeline->add_sink(std::make_shared<TimedSink>((*desktop)->stream_mjpeg_sink(), encoded_times),
                                            core::Codec::Mjpeg);
        !s)
      return run.error = s.error(), run;
    pipeline->start();
  }

  // Per frame number: when it was drawn and handed over, which barcode it shows, whether it changed.
  std::vector<int64_t> captured, handed;
  std::vector<uint32_t> barcode_of;
  std::vector<bool> changed;
  auto make_room = [&](size_t n) {
    if (captured.size() >= n) return;
    captured.resize(n, 0);
    handed.resize(n, 0);
    barcode_of.resize(n, 0);
    changed.resize(n, false);
  };
  const uint64_t frames = uint64_t((o.seconds + o.warmup) * o.fps);
  make_room(frames + 1);
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

  std::unique_ptr<GlassClient> client;
  if (client_name == "glib") {
    client = std::make_unique<GlibClient>(sc.listen.unix_path, ticket);
  } else {
    RemoteViewer::Options xo;
    xo.unix_path = sc.listen.unix_path;
    xo.password = ticket;
    xo.desktop_width = config->width;
    xo.desktop_height = config->height;
    xo.without_gstreamer = client_name == "remote-viewer-mjpeg";
    client = std::make_unique<RemoteViewerClient>(xo);
  }
  // Frames a client sees before the measurement (remote-viewer's start) come first and are
  // left out like the warm-up's: the measured frames are numbered [begin, end).
  auto show_frame = [&] {
    make_room((*source)->next_sequence() + frames + 2);
    if (auto f = (*source)->render_next()) cb.on_frame(std::move(*f));
  };
  if (core::Status s = client->ready(show_frame); !s) {
    client.reset();
    if (pipeline) pipeline->stop();
    desktop->reset();
    return run.error = s.error(), run;
  }
  const uint64_t begin = (*source)->next_sequence();
  const uint64_t end = begin + frames;
  make_room(end + 1);

  (*source)->set_max_frames(frames);
  const int64_t t0 = core::monotonic_now_ns();
  if (core::Status s = (*source)->start(cb); !s) return run.error = s.error(), run;
  const std::string what = fmt::format("spice {} {} {}", run.implementation, workload, size);
  while (!(*source)->finished()) {
    std::this_thread::sleep_for(50ms);
    progress.update(uint64_t((seconds_done + double(core::monotonic_now_ns() - t0) / 1e9) * 1000), what);
  }
  (*source)->stop();
  // The last picture reaches the client after the server's and client's delays (stream mode:
  // spice-glib's 400 ms playout offset); wait for it, bounded. With the trailing delimiter,
  // remote-viewer's stream pipeline (avdec_h264 → ximagesink, synchronised to its clock) drops
  // frames that would reach the sink late (GStreamer QoS), the last one too: then a missing last
  // frame is a figure, not an error.
  const bool may_drop_last = stream && client_name == "remote-viewer" && o.trailing_delimiter;
  const bool last_shown = client->wait_barcode(last_changed, may_drop_last ? 3s : stream ? 10s : 5s);
  const double run_s = double(core::monotonic_now_ns() - t0) / 1e9;
  const core::Status client_status = client->finish(run_s, run.counters);
  if (pipeline) pipeline->stop();
  seconds_done += o.seconds + o.warmup;
  const auto seen = client->sightings();
  const auto encoded = encoded_times->take();
  // When each barcode first left the encoder (stream mode).
  std::map<uint32_t, int64_t> encoded_by_barcode;
  for (const auto& [seq, at] : encoded)
    if (seq < barcode_of.size() && !encoded_by_barcode.count(barcode_of[seq])) encoded_by_barcode[barcode_of[seq]] = at;

  // The measured window: every frame after the warm-up's, by frame number.
  const uint64_t first = std::min<uint64_t>(end, begin + uint64_t(o.warmup * o.fps + 0.5));
  const int64_t window_t0 = first < end ? captured[first] : t0;
  for (uint64_t seq = first; seq < end; ++seq) {
    if (captured[seq]) ++run.frames_produced;
    if (changed[seq] && (!stream || encoded_by_barcode.count(uint32_t(seq)))) ++run.barcodes_expected;
  }
  uint64_t out_of_order = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    const uint32_t b = seen[i].barcode;
    if (i > 0 && b <= seen[i - 1].barcode) ++out_of_order;
    if (b >= end || b < first || !captured[b]) continue;
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
  for (uint64_t seq = first; seq < end; ++seq)
    if (captured[seq] && handed[seq]) call_ms.push_back(double(handed[seq] - captured[seq]) / 1e6);
  const Percentiles call = percentiles(call_ms);
  const auto qxl = (*desktop)->stats();
  const auto st = (*desktop)->stream_stats();
  run.counters.update({{"source_frames", (*source)->next_sequence()},
                       {"frames_before_measuring", begin},
                       {"barcodes_shown_total", seen.size()},
                       {"out_of_order", out_of_order},
                       {"last_frame_shown", last_shown},
                       {stream ? "submit_ms" : "on_frame_ms", {{"p50", call.p50}, {"p99", call.p99}, {"max", call.max}}},
                       {"qxl_frames", qxl.frames},
                       {"qxl_drawables", qxl.drawables},
                       {"qxl_bytes_copied", qxl.bytes_copied},
                       {"qxl_queue_overflows", qxl.queue_overflows},
                       {"stream_access_units_sent", st.access_units_sent},
                       {"stream_dropped", st.dropped}});
  if (pipeline) {
    const auto ps = pipeline->stats();
    run.counters["frames_replaced"] = ps.frames_replaced;
    run.counters["frames_skipped"] = ps.frames_skipped;
    run.counters["frames_encoded"] = ps.frames_encoded;
    run.counters["encode_bytes"] = ps.bytes_out;
    const auto js = pipeline->jpeg_stats();  // MJPEG, for a client without an H.264 decoder
    run.counters["jpegs"] = js.jpegs;
    run.counters["jpeg_bytes"] = js.bytes;
    run.counters["encode_kbps"] = run_s > 0 ? double(ps.bytes_out + js.bytes) * 8 / run_s / 1000 : 0.0;
  }
  if (!frame_error.empty()) run.error = frame_error;
  else if (!client_status) run.error = client_status.error();
  else if (!last_shown && !may_drop_last) run.error = fmt::format("the client never showed the last frame ({})", last_changed);
  client.reset();    // remote-viewer and its Xvfb go before the server they show
  desktop->reset();  // the server goes before the pipeline that feeds it
  progress.finish_step(run.label());
  return run;
}

}  // namespace

double spice_bench_seconds(const SpiceBenchOptions& o) {
  const double per_client = double(o.modes.size() * o.workloads.size() * o.sizes.size()) * (o.seconds + o.warmup);
  return double(o.clients.size()) * per_client;
}

std::vector<Run> run_spice_bench(const SpiceBenchOptions& o, Progress& progress) {
  std::vector<Run> runs;
  double done = 0;
  for (const auto& client : o.clients)
    for (const auto& mode : o.modes)
      for (const auto& size : o.sizes)
        for (const auto& workload : o.workloads) runs.push_back(run_one(o, client, mode, workload, size, progress, done));
  return runs;
}

void print_spice_table(const SpiceBenchOptions& o, const std::vector<Run>& runs) {
  fmt::print("spice: {} fps, {:.1f} s per run after {:.1f} s warm-up, over a unix socket, to {}; glass to glass = drawn → "
             "shown by the client\n",
             o.fps, o.seconds, o.warmup, fmt::join(o.clients, " and "));
  size_t width = 13;
  for (const Run& r : runs) width = std::max(width, r.implementation.size());
  fmt::print("{:<{}} {:<12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}\n", "mode", width, "workload", "size", "1st stage",
             "p50 ms", "p95 ms", "p99 ms", "max ms", "barcodes", "wire kb/s");
  // remote-viewer's figures are as fine as its screen was polled: the worst run's poll interval.
  double poll_p50 = 0, poll_p99 = 0, poll_max = 0, grab_p50 = 0;
  for (const Run& r : runs) {
    if (r.counters.contains("poll_interval_ms")) {
      poll_p50 = std::max(poll_p50, r.counters["poll_interval_ms"].value("p50", 0.0));
      poll_p99 = std::max(poll_p99, r.counters["poll_interval_ms"].value("p99", 0.0));
      poll_max = std::max(poll_max, r.counters["poll_interval_ms"].value("max", 0.0));
      grab_p50 = std::max(grab_p50, r.counters["poll_grab_ms"].value("p50", 0.0));
    }
    if (r.frames.empty()) {
      fmt::print("{:<{}} {:<12} {:>9} error: {}\n", r.implementation, width, r.workload, r.size, r.error);
      continue;
    }
    const Percentiles t = percentiles(totals(r));
    const std::string first =
        r.stages.size() > 1 ? fmt::format("{:.2f}", percentiles(stage_durations(r, 0)).p50) : std::string("-");
    const std::string wire =
        r.counters.contains("wire_kbps") ? fmt::format("{:.0f}", r.counters["wire_kbps"].get<double>()) : std::string("-");
    fmt::print("{:<{}} {:<12} {:>9} {:>9} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>4}/{:<4} {:>9}\n", r.implementation, width,
               r.workload, r.size, first, t.p50, t.p95, t.p99, t.max, barcodes_read(r), r.barcodes_expected, wire);
    if (!r.error.empty()) fmt::print("  error: {}\n", r.error);
  }
  fmt::print("(1st stage, stream mode: p50 ms drawn → encoded; p50..max: drawn → shown in the client; wire kb/s: kbit/s the "
             "client's display channel read over the run, spice-glib only)\n");
  if (poll_p50 > 0) {
    fmt::print("(remote-viewer: its window read from Xvfb's screen with XShmGetImage every {:.2f} ms p50, {:.2f} ms p99, "
               "{:.2f} ms at worst, worst run's (one grab {:.2f} ms p50): each latency includes up to one such interval)\n",
               poll_p50, poll_p99, poll_max, grab_p50);
  }
}

}  // namespace vdistream::bench
