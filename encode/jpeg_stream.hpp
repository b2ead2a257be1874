// MJPEG for a client that cannot decode the desktop's H.264: a SPICE client whose GStreamer has no
// H.264 decoder still decodes MJPEG (spice-gtk's built-in libjpeg decoder). Takes the desktop's
// pictures from the pipeline (core::PictureSink, on the encode thread), keeps a full-range I420
// copy of the desktop by converting only the damaged tiles, and encodes the whole picture as one
// JPEG on its own thread, latest wins: pictures that come while a JPEG is being made are merged
// into the next one. Each JPEG goes to `out` as an EncodedFrame (codec Mjpeg, keyframe).
//
//   pipeline->add_sink(spice->stream_mjpeg_sink(), core::Codec::Mjpeg);  // makes one of these
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/frame.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "encode/software/i420_converter.hpp"

struct AVCodecContext;
struct AVFrame;
struct AVPacket;

namespace vdistream::encode {

struct JpegConfig {
  std::string name = "default";  // the desktop's name, in every log line
  // libavcodec's quantiser scale, 2 (best, largest) .. 31 (worst). 4 keeps desktop text sharp.
  int qscale = 4;
};

struct JpegStats {
  uint64_t pictures = 0;        // pictures with something changed (a whole one counts too)
  uint64_t merged = 0;          // pictures that went into a later JPEG instead of their own
  uint64_t jpegs = 0;           // JPEGs handed to the sink
  uint64_t bytes = 0;           // their size
  uint64_t errors = 0;          // conversion or encode failures (logged)
  uint64_t tiles_converted = 0;
};

class JpegStream final : public core::PictureSink {
 public:
  static core::Result<std::shared_ptr<JpegStream>> create(const JpegConfig& config,
                                                          std::shared_ptr<core::EncodedSink> out);
  ~JpegStream() override;  // stops the encode thread
  JpegStream(const JpegStream&) = delete;
  JpegStream& operator=(const JpegStream&) = delete;

  void on_picture(const core::Frame& frame) override;  // the pipeline's encode thread
  bool wants_pictures() const override { return out_->wants_frames(); }

  const std::shared_ptr<core::EncodedSink>& sink() const { return out_; }
  JpegStats stats() const;
  // Waits until every picture given so far has gone out as a JPEG (or failed). False on timeout.
  bool wait_idle(std::chrono::milliseconds timeout) const;

 private:
  JpegStream(const JpegConfig& config, std::shared_ptr<core::EncodedSink> out);
  void run();
  // JPEG thread. copy_canvas() under mutex_: (re)opens the encoder at the canvas's size and
  // copies the canvas into its frame; encode() then runs unlocked.
  core::Status open_encoder(int32_t width, int32_t height);
  core::Status copy_canvas();
  core::Result<std::vector<uint8_t>> encode();

  JpegConfig config_;
  core::Logger log_;
  std::shared_ptr<core::EncodedSink> out_;
  I420Converter converter_{I420Converter::Range::Full};  // the pipeline's encode thread only

  // The desktop as the last picture left it, and what the JPEG thread has not encoded yet.
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::vector<uint8_t> canvas_;  // I420, full range: Y then U then V, tightly packed
  int32_t width_ = 0, height_ = 0;
  bool pending_ = false;
  bool busy_ = false;  // the JPEG thread is encoding
  bool stopping_ = false;
  core::FrameTimestamps pending_stamps_;
  uint64_t pending_sequence_ = 0;
  JpegStats stats_;

  // JPEG thread only.
  AVCodecContext* ctx_ = nullptr;
  AVFrame* frame_ = nullptr;
  AVPacket* packet_ = nullptr;
  int32_t open_width_ = 0, open_height_ = 0;
  int64_t next_pts_ = 0;
  std::thread thread_;
};

}  // namespace vdistream::encode
