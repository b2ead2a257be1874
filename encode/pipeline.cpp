#include "encode/pipeline.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/clock.hpp"

namespace vdistream::encode {

core::Result<std::unique_ptr<DesktopPipeline>> DesktopPipeline::create(const PipelineConfig& config,
                                                                       const EncoderRegistry& registry) {
  auto choice = registry.choose(config.encoder, config.encoder_preference);
  if (!choice) return core::Error{choice.error()};
  // The chosen backend with the later usable ones behind it: a failure hands over with an IDR.
  Backend backend = registry.with_fallback(*choice, config.name);
  return std::unique_ptr<DesktopPipeline>(new DesktopPipeline(config, std::move(*choice), backend));
}

DesktopPipeline::DesktopPipeline(const PipelineConfig& config, EncoderChoice choice, const Backend& backend)
    : config_(config), log_(config.name), choice_(std::move(choice)), backend_(backend),
      bitrate_(config.encoder.bitrate_bps) {
  log_.info("encoder: {}", choice_.why);
}

DesktopPipeline::~DesktopPipeline() { stop(); }

void DesktopPipeline::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void DesktopPipeline::stop() {
  if (!running_.exchange(false)) return;
  slot_.close();
  if (thread_.joinable()) thread_.join();
}

void DesktopPipeline::submit(core::Frame frame) {
  bool replaced = slot_.put(std::move(frame));
  std::lock_guard lock(stats_mutex_);
  ++stats_.frames_captured;
  if (replaced) ++stats_.frames_replaced;
}

void DesktopPipeline::add_sink(std::shared_ptr<core::EncodedSink> sink) {
  {
    std::lock_guard lock(sinks_mutex_);
    sinks_.push_back(std::move(sink));
  }
  request_keyframe();
}

core::Status DesktopPipeline::add_sink(std::shared_ptr<core::EncodedSink> sink, core::Codec codec) {
  if (codec == config_.encoder.codec) {
    add_sink(std::move(sink));
    return {};
  }
  if (codec != core::Codec::Mjpeg)
    return core::Error{fmt::format("this desktop encodes {}: it cannot also send {}", core::codec_name(config_.encoder.codec),
                                   core::codec_name(codec))};
  JpegConfig jc;
  jc.name = config_.name;
  auto jpeg = JpegStream::create(jc, std::move(sink));
  if (!jpeg) return core::Error{jpeg.error()};
  auto entry = std::make_shared<PictureEntry>();
  entry->sink = std::move(*jpeg);
  {
    std::lock_guard lock(sinks_mutex_);
    picture_sinks_.push_back(std::move(entry));
  }
  slot_.wake();  // the whole picture, as soon as it wants one
  return {};
}

void DesktopPipeline::remove_sink(const std::shared_ptr<core::EncodedSink>& sink) {
  std::shared_ptr<PictureEntry> removed;  // its JpegStream stops outside the lock
  std::lock_guard lock(sinks_mutex_);
  sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), sink), sinks_.end());
  for (auto it = picture_sinks_.begin(); it != picture_sinks_.end();)
    if ((*it)->sink->sink() == sink) {
      removed = *it;
      it = picture_sinks_.erase(it);
    } else {
      ++it;
    }
}

JpegStats DesktopPipeline::jpeg_stats() const {
  std::lock_guard lock(sinks_mutex_);
  JpegStats sum;
  for (const auto& e : picture_sinks_) {
    const JpegStats s = e->sink->stats();
    sum.pictures += s.pictures;
    sum.merged += s.merged;
    sum.jpegs += s.jpegs;
    sum.bytes += s.bytes;
    sum.errors += s.errors;
    sum.tiles_converted += s.tiles_converted;
  }
  return sum;
}

void DesktopPipeline::feed_pictures(const core::Frame& frame, bool fresh) {
  std::vector<std::shared_ptr<PictureEntry>> entries;
  {
    std::lock_guard lock(sinks_mutex_);
    if (picture_sinks_.empty()) return;
    entries = picture_sinks_;
  }
  for (const auto& e : entries) {
    if (!e->sink->wants_pictures()) {
      e->needs_full = true;
      continue;
    }
    if (e->needs_full.exchange(false)) {
      core::Frame whole = frame;
      whole.damage = core::DamageRegion::full(frame.width(), frame.height());
      e->sink->on_picture(whole);
    } else if (fresh) {
      e->sink->on_picture(frame);
    }
  }
}

size_t DesktopPipeline::sink_count() const {
  std::lock_guard lock(sinks_mutex_);
  return sinks_.size();
}

bool DesktopPipeline::watched() const {
  std::lock_guard lock(sinks_mutex_);
  return std::any_of(sinks_.begin(), sinks_.end(), [](const auto& sink) { return sink->wants_frames(); });
}

std::vector<std::shared_ptr<core::EncodedSink>> DesktopPipeline::sinks_snapshot() const {
  std::lock_guard lock(sinks_mutex_);
  return sinks_;
}

void DesktopPipeline::request_keyframe() {
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.keyframe_requests;
  }
  keyframe_wanted_ = true;
  {
    // For a picture sink a keyframe is the whole picture.
    std::lock_guard lock(sinks_mutex_);
    for (const auto& e : picture_sinks_) e->needs_full = true;
  }
  slot_.wake();
}

void DesktopPipeline::set_bitrate(uint32_t bps) { bitrate_ = bps; }

bool DesktopPipeline::wait_idle(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(stats_mutex_);
      if (taken_done_ + stats_.frames_replaced >= stats_.frames_captured) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void DesktopPipeline::reset_latency() {
  std::lock_guard lock(stats_mutex_);
  for (core::LatencyHistogram* h : {&stats_.wait, &stats_.convert, &stats_.encode, &stats_.total}) h->clear();
}

PipelineStats DesktopPipeline::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

std::string DesktopPipeline::encoder_name() const {
  return encoder_ ? encoder_->name() : choice_.backend + " (opens with the first frame)";
}

bool DesktopPipeline::trailing_wanted() const {
  std::lock_guard lock(sinks_mutex_);
  return std::any_of(sinks_.begin(), sinks_.end(), [](const auto& sink) { return sink->wants_trailing_frame(); });
}

int64_t DesktopPipeline::trailing_delay_ns() const {
  // Half a frame interval after the next frame would have come: a desktop that keeps changing
  // never needs one.
  const double fps = config_.encoder.fps > 0 ? config_.encoder.fps : 30.0;
  return std::max<int64_t>(20'000'000, int64_t(1.5e9 / fps));
}

void DesktopPipeline::run() {
  last_output_ns_ = core::monotonic_now_ns();
  while (running_) {
    int64_t wake_ns = last_output_ns_ + config_.keepalive_interval_ns;
    const bool trailing_due = trailing_pending_ && trailing_wanted();
    if (trailing_due) wake_ns = std::min(wake_ns, last_output_ns_ + trailing_delay_ns());
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::nanoseconds(std::max<int64_t>(1'000'000, wake_ns - core::monotonic_now_ns()));
    std::optional<core::Frame> taken = slot_.take_until(deadline);
    if (!running_) break;
    const bool is_watched = watched();

    if (taken) {
      struct Done {
        std::atomic<uint64_t>& n;
        ~Done() { ++n; }
      } done{taken_done_};
      taken->timestamps.dequeued_ns = core::monotonic_now_ns();
      feed_pictures(*taken, true);
      if (!is_watched) {
        // Nobody watches: the encoder costs nothing, but its planes fall behind.
        planes_stale_ = true;
        damage_tracker_.reset();
        last_frame_ = std::move(taken);
        std::lock_guard lock(stats_mutex_);
        ++stats_.frames_unwatched;
        continue;
      }
      core::Frame frame = std::move(*taken);
      const uint64_t copies_before = damage_tracker_.full_frame_copies();
      damage_tracker_.track(frame);  // inexact damage becomes the tiles that really changed
      if (uint64_t copies = damage_tracker_.full_frame_copies() - copies_before) {
        std::lock_guard lock(stats_mutex_);
        stats_.full_frame_copies += copies;
      }
      if (planes_stale_) frame.damage = core::DamageRegion::full(frame.width(), frame.height());
      last_frame_ = frame;
      if (frame.damage.empty() && !keyframe_wanted_) {
        std::lock_guard lock(stats_mutex_);
        ++stats_.frames_skipped;
        continue;
      }
      encode_and_send(std::move(frame), Output::Captured);
      continue;
    }

    // Woken without a frame: a keyframe request, the trailing frame, or the keep-alive timer.
    if (last_frame_) feed_pictures(*last_frame_, false);
    if (!is_watched || !last_frame_) continue;
    core::Frame again = *last_frame_;
    again.damage = planes_stale_ ? core::DamageRegion::full(again.width(), again.height()) : core::DamageRegion();
    again.timestamps = {};
    again.timestamps.captured_ns = again.timestamps.dequeued_ns = core::monotonic_now_ns();
    const int64_t idle_ns = core::monotonic_now_ns() - last_output_ns_;
    if (keyframe_wanted_)
      encode_and_send(std::move(again), Output::Captured);
    else if (trailing_due && idle_ns >= trailing_delay_ns() - 1'000'000)
      encode_and_send(std::move(again), Output::Trailing);
    else if (idle_ns >= config_.keepalive_interval_ns - 1'000'000)
      encode_and_send(std::move(again), Output::KeepAlive);
  }
}

void DesktopPipeline::encode_and_send(core::Frame frame, Output kind) {
  const bool keepalive = kind != Output::Captured;
  if (!encoder_) {
    EncoderConfig cfg = config_.encoder;
    cfg.width = frame.width();
    cfg.height = frame.height();
    cfg.bitrate_bps = bitrate_;
    auto created = backend_.create(cfg);
    if (!created) {
      log_.error("cannot open the {} encoder at {}x{}: {}", backend_.name, cfg.width, cfg.height, created.error());
      std::lock_guard lock(stats_mutex_);
      ++stats_.encode_errors;
      return;
    }
    encoder_ = std::move(*created);
    log_.info("encoding with {} at {}x{}", encoder_->name(), cfg.width, cfg.height);
  }
  if (keyframe_wanted_.exchange(false)) encoder_->request_keyframe();
  encoder_->set_bitrate(bitrate_);

  auto out = encoder_->encode(frame);
  if (!out) {
    log_.error("encode of frame {} failed: {}", frame.sequence, out.error());
    encoder_.reset();  // reopen on the next frame, with an IDR and full conversion
    damage_tracker_.reset();
    seen_counters_ = {};
    planes_stale_ = true;
    keyframe_wanted_ = true;
    std::lock_guard lock(stats_mutex_);
    ++stats_.encode_errors;
    return;
  }
  planes_stale_ = false;
  last_output_ns_ = core::monotonic_now_ns();
  trailing_pending_ = kind == Output::Captured;

  auto sinks = sinks_snapshot();
  uint64_t bytes = 0, keyframes = 0;
  std::vector<core::FrameTimestamps> stamps;
  for (core::EncodedFrame& ef : *out) {
    bytes += ef.data.size();
    keyframes += ef.keyframe ? 1 : 0;
    stamps.push_back(ef.timestamps);
    auto shared = std::make_shared<const core::EncodedFrame>(std::move(ef));
    for (const auto& sink : sinks) sink->on_encoded(shared);
  }

  EncoderCounters counters = encoder_->counters();
  std::lock_guard lock(stats_mutex_);
  stats_.tiles_converted += counters.tiles_converted - seen_counters_.tiles_converted;
  stats_.full_frame_copies += counters.full_frame_copies - seen_counters_.full_frame_copies;
  seen_counters_ = counters;
  stats_.frames_encoded += out->size();
  stats_.keepalives += kind == Output::KeepAlive ? out->size() : 0;
  stats_.trailing_frames += kind == Output::Trailing ? out->size() : 0;
  stats_.keyframes += keyframes;
  stats_.bytes_out += bytes;
  if (keepalive) return;  // not a captured frame: its latency means nothing
  for (const auto& ts : stamps) {
    stats_.wait.record_ns(ts.dequeued_ns - ts.captured_ns);
    stats_.convert.record_ns(ts.converted_ns - ts.dequeued_ns);
    stats_.encode.record_ns(ts.encoded_ns - ts.converted_ns);
    stats_.total.record_ns(ts.encoded_ns - ts.captured_ns);
  }
}

}  // namespace vdistream::encode
