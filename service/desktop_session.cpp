#include "service/desktop_session.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "capture/qemu/qemu_source.hpp"
#include "core/clock.hpp"
#include "encode/audio/audio_pipeline.hpp"
#include "encode/audio/microphone.hpp"
#include "service/source_factory.hpp"
#include "service/spice_wiring.hpp"
#include "transport/webrtc_desktop.hpp"

namespace vdistream::service {

struct DesktopSession::Parts {
  std::unique_ptr<capture::Source> source;
  std::unique_ptr<encode::DesktopPipeline> pipeline;
  std::shared_ptr<encode::FileSink> recorder;
  std::mutex spice_mutex;  // the source thread's frames and cursor vs disconnect_viewers()
  std::unique_ptr<spice::SpiceDesktop> spice;
  std::shared_ptr<transport::WebRtcDesktop> webrtc;  // under spice_mutex too
  core::CursorPosition cursor;  // source thread only
  std::unique_ptr<encode::AudioPipeline> audio;  // with audio and a sink for it
  std::shared_ptr<core::ClipboardHub> clipboard;  // with has_clipboard(); outlives the source's use of it
  std::shared_ptr<encode::MicrophoneMixer> microphone;  // with has_microphone(); likewise
  std::atomic<bool> spice_warned{false};
  std::atomic<uint64_t> frames_taken{0};  // for config.max_frames
  uint64_t spice_restarts = 0;
};

DesktopSession::DesktopSession(DesktopConfig config, const encode::EncoderRegistry& registry,
                               transport::HttpServer* http)
    : config_(std::move(config)),
      registry_(registry),
      http_(http),
      log_(config_.name),
      created_ns_(core::monotonic_now_ns()) {}

DesktopSession::~DesktopSession() { stop(); }

void DesktopSession::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = false;
  }
  thread_ = std::thread(&DesktopSession::supervise, this);
}

void DesktopSession::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool DesktopSession::wait_for(std::chrono::milliseconds d) {
  std::unique_lock lock(wake_mutex_);
  return !wake_.wait_for(lock, d, [this] { return stopping_; });
}

void DesktopSession::set_state(SessionState state, const std::string& reason) {
  std::lock_guard lock(mutex_);
  state_ = state;
  state_reason_ = reason;
}

void DesktopSession::supervise() {
  auto backoff = kMinBackoff;
  for (;;) {
    {
      std::lock_guard lock(wake_mutex_);
      if (stopping_) break;
    }
    set_state(SessionState::Starting, "starting");
    core::Result<std::unique_ptr<Parts>> built = core::Error{"not built"};
    try {
      built = build();
    } catch (const std::exception& e) {
      built = core::Error{fmt::format("unexpected failure: {}", e.what())};
    }
    if (!built) {
      log_.error("cannot start: {} (retrying in {} s)", built.error(), backoff.count() / 1000.0);
      set_state(SessionState::Failed, built.error());
      if (!wait_for(backoff)) break;
      backoff = std::min(backoff * 2, kMaxBackoff);
      continue;
    }
    backoff = kMinBackoff;
    {
      std::lock_guard lock(mutex_);
      parts_ = std::move(*built);
      last_sample_ = {};
    }
    while (wait_for(std::chrono::seconds(1))) sample_rates();
    std::unique_ptr<Parts> parts;
    {
      std::lock_guard lock(mutex_);
      parts = std::move(parts_);
    }
    teardown(std::move(parts));
    break;
  }
  set_state(SessionState::Stopped, "stopped");
  connected_ = false;
  log_.info("stopped");
}

bool DesktopSession::has_audio() const {
  // Only a VM has sound; a synthetic desktop's clients get no playback channel or audio track.
  return config_.audio && (config_.spice || config_.webrtc) && capture::qemu::is_qemu_spec(config_.source);
}

bool DesktopSession::has_clipboard() const {
  // Only a VM has a clipboard (QEMU's D-Bus Clipboard).
  return config_.clipboard && (config_.spice || config_.webrtc) && capture::qemu::is_qemu_spec(config_.source);
}

bool DesktopSession::has_microphone() const {
  // Only a VM records (QEMU's D-Bus audio input).
  return config_.audio_in && (config_.spice || config_.webrtc) && capture::qemu::is_qemu_spec(config_.source);
}

spice::SpiceConfig DesktopSession::spice_config(const Parts& p) const {
  spice::SpiceConfig c = *config_.spice;
  c.audio = has_audio();
  c.clipboard = p.clipboard;
  c.microphone = p.microphone;
  return c;
}

core::Result<std::unique_ptr<DesktopSession::Parts>> DesktopSession::build() {
  auto parts = std::make_unique<Parts>();
  Parts* p = parts.get();
  const bool audio = has_audio();
  if (has_clipboard()) p->clipboard = std::make_shared<core::ClipboardHub>(config_.name, config_.clipboard_max_bytes);
  if (has_microphone()) p->microphone = std::make_shared<encode::MicrophoneMixer>();
  auto source = make_source(config_.source, config_.name, audio);
  if (!source) return core::Error{source.error()};
  p->source = std::move(*source);

  encode::PipelineConfig pc;
  pc.name = config_.name;
  const EncodeSettings& e = config_.encode;
  pc.encoder.bitrate_bps = e.bitrate_kbps * 1000;
  encode::parse_profile(e.profile, pc.encoder.profile);
  pc.encoder.intra_refresh = e.intra_refresh;
  const double source_fps = p->source->frame_rate();
  pc.encoder.fps = source_fps > 0 ? std::min(source_fps, e.max_fps) : e.max_fps;
  if (!e.encoders.empty()) pc.encoder_preference = e.encoders;
  auto pipeline = encode::DesktopPipeline::create(pc, registry_);
  if (!pipeline) return core::Error{pipeline.error()};
  p->pipeline = std::move(*pipeline);  // it logs the encoder it chose, and why

  if (config_.spice) {
    auto spice = spice::SpiceDesktop::create(spice_config(*p), p->source->input(), p->pipeline.get());
    if (!spice) return core::Error{fmt::format("SPICE on {}: {}", config_.spice_listen, spice.error())};
    p->spice = std::move(*spice);
    if (core::Status s = attach_spice_stream(*p->pipeline, *p->spice); !s) return core::Error{s.error()};
  }
  if (config_.webrtc) {
    if (core::Status s = start_webrtc(*p); !s) return core::Error{s.error()};
  }
  if (!config_.record.empty()) {
    auto recorder = encode::FileSink::open(config_.record, config_.name);
    if (!recorder) return core::Error{recorder.error()};
    p->recorder = *recorder;
    p->pipeline->add_sink(p->recorder);
  }
  {
    std::lock_guard lock(mutex_);
    for (const auto& sink : external_sinks_) p->pipeline->add_sink(sink);
  }
  p->pipeline->start();

  capture::SourceCallbacks callbacks;
  callbacks.clipboard = p->clipboard;
  callbacks.microphone = p->microphone;
  if (audio) {
    encode::AudioPipelineSinks sinks;
    sinks.on_pcm = [p](const core::AudioChunk& chunk) {
      std::lock_guard lock(p->spice_mutex);
      if (p->spice) p->spice->play_audio(chunk);
    };
    if (config_.webrtc)
      sinks.on_opus = [p](const core::EncodedAudioPtr& packet) {
        std::lock_guard lock(p->spice_mutex);
        if (p->webrtc) p->webrtc->on_audio(packet);
      };
    sinks.on_stop = [p] {
      std::lock_guard lock(p->spice_mutex);
      if (p->spice) p->spice->stop_audio();
    };
    p->audio = std::make_unique<encode::AudioPipeline>(config_.name, std::move(sinks));
    callbacks.on_audio = [p](const core::AudioPacket& packet) { p->audio->push(packet); };
    callbacks.on_audio_stop = [p](uint64_t stream) { p->audio->stop_stream(stream); };
  }
  const bool qxl = p->spice && !p->spice->stream_sink();
  callbacks.on_frame = [this, p, qxl](core::Frame frame) {
    if (config_.max_frames && p->frames_taken.fetch_add(1) >= config_.max_frames) return;
    if (qxl) {
      std::lock_guard lock(p->spice_mutex);
      if (p->spice)
        if (core::Status s = p->spice->on_frame(frame); !s && !p->spice_warned.exchange(true))
          log_.warn("SPICE refused a frame: {}", s.error());
    }
    p->pipeline->submit(std::move(frame));
  };
  callbacks.on_cursor_shape = [p](const core::CursorShape& shape) {
    std::lock_guard lock(p->spice_mutex);
    if (p->spice) p->spice->set_cursor(shape, p->cursor);
    if (p->webrtc) p->webrtc->set_cursor(shape);
  };
  callbacks.on_cursor_position = [p](const core::CursorPosition& at) {
    std::lock_guard lock(p->spice_mutex);
    p->cursor = at;
    if (p->spice) p->spice->move_cursor(at);
    if (p->webrtc) p->webrtc->move_cursor(at);
  };
  callbacks.on_state = [this](bool connected, const std::string& why) {
    connected_ = connected;
    if (connected) ++connections_;
    log_.info("source {}: {}", connected ? "connected" : "disconnected", why);
    set_state(connected ? SessionState::Connected : SessionState::Disconnected, why);
  };
  set_state(SessionState::Disconnected, "connecting to " + p->source->describe());
  if (core::Status s = p->source->start(callbacks); !s) {
    p->pipeline->stop();
    return core::Error{fmt::format("cannot start {}: {}", p->source->describe(), s.error())};
  }
  log_.info("serving {}{}{}{}", p->source->describe(), p->spice ? " → SPICE " + config_.spice_listen : "",
            config_.webrtc ? " → WebRTC" : "", p->recorder ? " → " + config_.record : "");
  return parts;
}

void DesktopSession::teardown(std::unique_ptr<Parts> p) {
  if (!p) return;
  p->source->stop();  // no more frames or cursor callbacks after this
  {
    std::lock_guard lock(p->spice_mutex);
    if (p->spice) detach_spice_stream(*p->pipeline, *p->spice);
    p->spice.reset();  // before the pipeline it asks for keyframes
    if (p->webrtc) p->pipeline->remove_sink(p->webrtc);
    p->webrtc.reset();  // closes its viewers and unregisters its paths
  }
  p->pipeline->wait_idle(std::chrono::seconds(2));
  p->pipeline->stop();
  DesktopStatus last;
  if (p->recorder)
    if (core::Status s = p->recorder->close(); !s) {
      log_.error("{}", s.error());
      last.record_error = s.error();
    }
  fill_parts_status(last, *p);
  std::lock_guard lock(mutex_);
  last_parts_status_ = std::move(last);
}

void DesktopSession::sample_rates() {
  std::lock_guard lock(mutex_);
  if (!parts_) return;
  const auto stats = parts_->pipeline->stats();
  const auto jpeg = parts_->pipeline->jpeg_stats();  // SPICE clients without H.264
  uint64_t out = stats.frames_encoded + jpeg.jpegs;
  {
    std::lock_guard spice_lock(parts_->spice_mutex);
    if (parts_->spice) out += parts_->spice->stats().frames;
  }
  const Sample now{core::monotonic_now_ns(), stats.frames_captured, out, stats.bytes_out + jpeg.bytes};
  if (last_sample_.at_ns > 0 && now.at_ns > last_sample_.at_ns) {
    const double dt = double(now.at_ns - last_sample_.at_ns) / 1e9;
    // Counters of parts that were replaced (a SPICE server restarted by disconnect_viewers, its
    // MJPEG stream) start again from 0: no negative rates.
    auto delta = [](uint64_t now_value, uint64_t before) { return double(now_value >= before ? now_value - before : 0); };
    fps_in_ = delta(now.captured, last_sample_.captured) / dt;
    fps_out_ = delta(now.out, last_sample_.out) / dt;
    bitrate_bps_ = delta(now.bytes, last_sample_.bytes) * 8 / dt;
    streaming_ = connected_ && now.out > last_sample_.out;
  }
  last_sample_ = now;
}

void DesktopSession::fill_parts_status(DesktopStatus& s, Parts& p) const {
  s.source = p.source->describe();
  const auto& choice = p.pipeline->encoder_choice();
  s.encoder = p.pipeline->encoder_name();
  s.encoder_why = choice.why;
  s.encoder_outcomes = choice.outcomes;
  s.bitrate_target_bps = config_.encode.bitrate_kbps * 1000;
  s.pipeline = p.pipeline->stats();
  s.capture = p.source->capture_stats();
  if (p.audio) {
    s.audio_source = p.source->audio_stats();
    s.audio_pipeline = p.audio->stats();
  }
  if (p.recorder) s.recorded_frames = p.recorder->frames_written();
  if (p.clipboard) s.clipboard_stats = p.clipboard->stats();
  if (p.microphone) {
    s.microphone_stats = p.microphone->stats();
    s.microphone_source = p.source->microphone_stats();
  }
  std::lock_guard spice_lock(p.spice_mutex);
  if (p.spice) {
    s.spice_agent = p.spice->agent_stats();
    s.spice_record = p.spice->record_stats();
    s.spice_qxl = p.spice->stats();
    s.spice_stream = p.spice->stream_stats();
    s.spice_playback = p.spice->playback_stats();
    s.viewers += uint32_t(std::max(0, p.spice->clients()));  // either mode
  }
  if (p.webrtc) {
    const auto webrtc = p.webrtc->stats();
    s.viewers += uint32_t(webrtc.viewers);
    s.webrtc_stats_json = transport::stats_json(webrtc);
  }
}

DesktopStatus DesktopSession::status() const {
  DesktopStatus s;
  s.name = config_.name;
  s.source = config_.source;
  s.webrtc = config_.webrtc;
  s.audio = has_audio();
  s.clipboard = has_clipboard();
  s.microphone = has_microphone();
  s.record = config_.record;
  s.spice_listen = config_.spice ? config_.spice->listen.to_string() : "";
  s.spice_mode = config_.spice ? config_.spice_mode : "";
  s.connected = connected_;
  s.source_connections = connections_;
  s.uptime_seconds = double(core::monotonic_now_ns() - created_ns_) / 1e9;
  std::lock_guard lock(mutex_);
  s.state = state_;
  s.state_reason = state_reason_;
  s.fps_in = fps_in_;
  s.fps_out = fps_out_;
  s.bitrate_bps = bitrate_bps_;
  s.streaming = streaming_ && s.connected;
  if (!parts_) {
    if (!last_parts_status_) return s;
    const DesktopStatus& l = *last_parts_status_;  // stopped: what it was when it stopped
    s.source = l.source;
    s.encoder = l.encoder;
    s.encoder_why = l.encoder_why;
    s.encoder_outcomes = l.encoder_outcomes;
    s.bitrate_target_bps = l.bitrate_target_bps;
    s.pipeline = l.pipeline;
    s.capture = l.capture;
    s.audio_source = l.audio_source;
    s.audio_pipeline = l.audio_pipeline;
    s.spice_playback = l.spice_playback;
    s.clipboard_stats = l.clipboard_stats;
    s.microphone_stats = l.microphone_stats;
    s.microphone_source = l.microphone_source;
    s.spice_record = l.spice_record;
    s.spice_agent = l.spice_agent;
    s.spice_qxl = l.spice_qxl;
    s.spice_stream = l.spice_stream;
    s.recorded_frames = l.recorded_frames;
    s.record_error = l.record_error;
    return s;
  }
  fill_parts_status(s, *parts_);
  s.viewers += uint32_t(external_sinks_.size());
  return s;
}

core::Status DesktopSession::request_keyframe() {
  std::lock_guard lock(mutex_);
  if (!parts_) return core::Error{fmt::format("desktop '{}' is not running ({})", config_.name, state_reason_)};
  parts_->pipeline->request_keyframe();
  log_.info("keyframe requested through the API");
  return {};
}

core::Status DesktopSession::reset_latency() {
  std::lock_guard lock(mutex_);
  if (!parts_) return core::Error{fmt::format("desktop '{}' is not running ({})", config_.name, state_reason_)};
  parts_->pipeline->reset_latency();
  return {};
}

core::Result<size_t> DesktopSession::disconnect_viewers() {
  std::lock_guard lock(mutex_);
  if (!parts_) return core::Error{fmt::format("desktop '{}' is not running ({})", config_.name, state_reason_)};
  size_t reset = 0;
  Parts& p = *parts_;
  if (config_.spice) {
    std::lock_guard spice_lock(p.spice_mutex);
    if (p.spice) {
      detach_spice_stream(*p.pipeline, *p.spice);
      p.spice.reset();  // closes every client connection
      ++reset;
    }
    auto spice = spice::SpiceDesktop::create(spice_config(p), p.source->input(), p.pipeline.get());
    if (!spice) {
      log_.error("SPICE could not listen again after disconnecting its clients: {}", spice.error());
      return core::Error{spice.error()};
    }
    p.spice = std::move(*spice);
    if (core::Status s = attach_spice_stream(*p.pipeline, *p.spice); !s) return core::Error{s.error()};
    ++p.spice_restarts;
  }
  if (p.webrtc) {
    std::lock_guard spice_lock(p.spice_mutex);
    p.pipeline->remove_sink(p.webrtc);
    p.webrtc.reset();  // closes every viewer's connection
    ++reset;
    if (core::Status s = start_webrtc(p); !s) {
      log_.error("WebRTC could not serve again after disconnecting its viewers: {}", s.error());
      return core::Error{s.error()};
    }
  }
  for (const auto& sink : external_sinks_) {
    p.pipeline->remove_sink(sink);
    ++reset;
  }
  external_sinks_.clear();
  log_.info("disconnected viewers through the API ({} reset)", reset);
  return reset;
}

// The desktop's page and signalling on the service's HTTP server; the WebRTC desktop joins the
// encode pipeline while it has viewers, and its rate controller moves the bitrate between the
// configured bounds.
core::Status DesktopSession::start_webrtc(Parts& p) {
  if (!http_) return core::Error{"webrtc = true, but the service has no HTTP server ([http] listen)"};
  transport::WebRtcDesktopConfig wc;
  wc.name = config_.name;
  wc.token = config_.webrtc_token;
  wc.max_viewers = config_.webrtc_max_viewers;
  wc.rate.min_bps = config_.encode.min_bitrate_kbps * 1000;
  wc.rate.max_bps = config_.encode.max_bitrate_kbps * 1000;
  wc.rate.start_bps = config_.encode.bitrate_kbps * 1000;
  wc.barcode_is_sequence = config_.source.starts_with("synthetic:");
  wc.ice = config_.ice;
  wc.audio = has_audio();
  transport::WebRtcDesktopHooks hooks;
  encode::DesktopPipeline* pipeline = p.pipeline.get();
  hooks.keyframes = pipeline;
  hooks.input = p.source->input();
  hooks.clipboard = p.clipboard;
  hooks.microphone = p.microphone;  // audio_in: pages may send their microphone too
  hooks.set_bitrate = [pipeline](uint32_t bps) { pipeline->set_bitrate(bps); };
  hooks.on_frames = [this](uint64_t viewer, const transport::FrameReport& report) {
    std::lock_guard lock(presented_mutex_);
    for (const auto& f : report.frames) {
      presented_.push_back({presented_count_++, viewer, f.barcode, f.receive_ms, f.present_ms});
      if (presented_.size() > kPresentedKept) presented_.pop_front();
    }
  };
  auto weak = std::make_shared<std::weak_ptr<transport::WebRtcDesktop>>();
  hooks.set_active = [pipeline, weak](bool active) {  // the encoder runs only while someone watches
    if (auto desktop = weak->lock()) active ? pipeline->add_sink(desktop) : pipeline->remove_sink(desktop);
  };
  auto desktop = transport::WebRtcDesktop::create(*http_, wc, std::move(hooks));
  if (!desktop) return core::Error{fmt::format("WebRTC: {}", desktop.error())};
  *weak = *desktop;
  p.webrtc = *desktop;
  log_.info("WebRTC viewers: {}{}", http_->base_url(), p.webrtc->path());
  return {};
}

std::vector<DesktopSession::Presented> DesktopSession::presented(uint64_t after) const {
  std::lock_guard lock(presented_mutex_);
  std::vector<Presented> out;
  for (const Presented& p : presented_)
    if (p.index >= after) out.push_back(p);
  return out;
}

void DesktopSession::add_encoded_sink(std::shared_ptr<core::EncodedSink> sink) {
  std::lock_guard lock(mutex_);
  external_sinks_.push_back(sink);
  if (parts_) parts_->pipeline->add_sink(std::move(sink));
}

void DesktopSession::remove_encoded_sink(const std::shared_ptr<core::EncodedSink>& sink) {
  std::lock_guard lock(mutex_);
  std::erase(external_sinks_, sink);
  if (parts_) parts_->pipeline->remove_sink(sink);
}

}  // namespace vdistream::service
