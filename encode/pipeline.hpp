// One desktop's path from frames to access units: a latest-wins slot, an encode thread, and any
// number of encoded sinks. The encoder runs only while a sink wants frames.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/frame.hpp"
#include "core/frame_slot.hpp"
#include "core/log.hpp"
#include "encode/damage_tracker.hpp"
#include "encode/encoder.hpp"
#include "encode/jpeg_stream.hpp"
#include "encode/pipeline_stats.hpp"
#include "encode/probe.hpp"

namespace vdistream::encode {

struct PipelineConfig {
  std::string name = "default";  // the desktop's name, in every log line
  EncoderConfig encoder;
  std::vector<std::string> encoder_preference = EncoderRegistry::default_preference();
  int64_t keepalive_interval_ns = 2'000'000'000;  // re-send the picture this often when idle
};

class DesktopPipeline final : public core::KeyframeRequester {
 public:
  // Chooses the encoder by probing (see EncoderRegistry::choose); the encoder itself opens at
  // the first frame's size.
  static core::Result<std::unique_ptr<DesktopPipeline>> create(const PipelineConfig& config,
                                                               const EncoderRegistry& registry);
  ~DesktopPipeline() override;

  void start();
  void stop();  // joins the encode thread; idempotent

  // From the source's thread. Never blocks on the encoder.
  void submit(core::Frame frame);

  // A new sink gets an IDR. With `codec` Mjpeg the sink gets JPEGs instead of the encoder's
  // access units: a JpegStream of its own, fed the pictures themselves (see jpeg_stream.hpp).
  void add_sink(std::shared_ptr<core::EncodedSink> sink);
  core::Status add_sink(std::shared_ptr<core::EncodedSink> sink, core::Codec codec);
  void remove_sink(const std::shared_ptr<core::EncodedSink>& sink);  // either kind
  size_t sink_count() const;
  bool watched() const;  // some sink wants frames now (EncodedSink::wants_frames)

  void request_keyframe() override;  // coalesced: many requests before the next encode = one IDR
  void set_bitrate(uint32_t bps);

  // Waits until every submitted frame has been encoded, skipped or replaced. False on timeout.
  bool wait_idle(std::chrono::milliseconds timeout) const;

  PipelineStats stats() const;
  JpegStats jpeg_stats() const;  // summed over the MJPEG sinks there are now
  // Forgets the latency histograms (not the counters), e.g. after a benchmark's warm-up: the
  // first frame also pays for opening the encoder.
  void reset_latency();
  const EncoderChoice& encoder_choice() const { return choice_; }
  std::string encoder_name() const;

 private:
  DesktopPipeline(const PipelineConfig& config, EncoderChoice choice, const Backend& backend);
  void run();
  enum class Output { Captured, KeepAlive, Trailing };
  void encode_and_send(core::Frame frame, Output kind);
  bool trailing_wanted() const;
  int64_t trailing_delay_ns() const;
  std::vector<std::shared_ptr<core::EncodedSink>> sinks_snapshot() const;
  struct PictureEntry {
    std::shared_ptr<JpegStream> sink;
    std::atomic<bool> needs_full{true};  // it missed pictures, or asked for a keyframe
  };
  // Encode thread: gives `frame` to the picture sinks that want it (`fresh`: a new frame from
  // the source; otherwise only to those that need the whole picture again).
  void feed_pictures(const core::Frame& frame, bool fresh);

  PipelineConfig config_;
  core::Logger log_;
  EncoderChoice choice_;
  const Backend backend_;
  std::unique_ptr<Encoder> encoder_;  // encode thread only

  core::FrameSlot slot_;
  std::atomic<bool> keyframe_wanted_{false};
  std::atomic<uint32_t> bitrate_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> taken_done_{0};  // frames taken from the slot and fully handled
  std::thread thread_;

  mutable std::mutex sinks_mutex_;
  std::vector<std::shared_ptr<core::EncodedSink>> sinks_;
  std::vector<std::shared_ptr<PictureEntry>> picture_sinks_;

  mutable std::mutex stats_mutex_;
  PipelineStats stats_;

  // Encode thread state.
  std::optional<core::Frame> last_frame_;  // the picture the encoder's planes hold
  DamageTracker damage_tracker_;           // for sources whose damage is not exact
  bool planes_stale_ = true;               // frames went by unencoded: convert everything next time
  int64_t last_output_ns_ = 0;
  bool trailing_pending_ = false;  // a captured frame went out and nothing has followed it yet
  EncoderCounters seen_counters_;  // of the current encoder, already added to stats_
};

}  // namespace vdistream::encode
