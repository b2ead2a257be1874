// Stream mode: plays the producer side of spice-server's stream device (the port
// org.spice-space.stream.0), so our encoder's H.264 access units reach the clients without
// re-encoding. Takes access units as a core::EncodedSink on the encode thread and hands them to
// the desktop's thread, where spice-server pulls them (read) and tells us what the clients can
// decode (write: START_STOP). When some client has no H.264 decoder, it streams MJPEG instead:
// JPEGs from a second sink (mjpeg_sink(), fed by the pipeline's JpegStream); the H.264 encoder
// rests meanwhile.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "core/log.hpp"
#include "glib/loop_thread.hpp"
#include "spice/stream_protocol.hpp"

typedef struct SpiceBaseInstance SpiceBaseInstance;

namespace vdistream::spice {

struct StreamStats {
  uint64_t access_units_sent = 0;
  uint64_t dropped = 0;  // back-pressure, or waiting for an IDR
  uint64_t formats_sent = 0;
  uint64_t start_stops = 0;
  uint64_t cursor_messages = 0;   // CURSOR_SET and CURSOR_MOVE
  uint64_t errors_recovered = 0;  // NOTIFY_ERROR answered by reopening the device
  uint64_t jpegs_sent = 0;        // MJPEG (clients without H.264): pictures sent
  uint64_t jpegs_replaced = 0;    // MJPEG: a waiting picture replaced by a newer one
  bool streaming = false;
  std::string codec;  // "h264" or "mjpeg" while streaming
};

class StreamProducer final : public core::EncodedSink, public std::enable_shared_from_this<StreamProducer> {
 public:
  // Queued bytes beyond which spice-server is not keeping up and frames are dropped.
  static constexpr size_t kMaxQueuedBytes = 2u << 20;

  // `trailing_delimiter`: end each DATA with an access unit delimiter (see stream::data_message).
  StreamProducer(const core::Logger& log, glib::LoopThread& thread, core::KeyframeRequester* keyframes,
                 bool trailing_delimiter = false);
  ~StreamProducer() override;

  SpiceBaseInstance* instance();
  void attached();  // desktop thread, after spice_server_add_interface: opens the port
  void detach();    // before the desktop's thread goes: later access units are ignored

  void on_encoded(const core::EncodedFramePtr& frame) override;  // encode thread
  // The encoder may rest while no client streams (START_STOP with no codecs, or none yet), or
  // while the stream is MJPEG.
  bool wants_frames() const override { return streaming_ && codec_ == stream::VideoCodec::H264; }
  // The sink for the JPEGs (EncodedFrame codec Mjpeg): wants frames only while the stream is
  // MJPEG. It holds this producer; the producer does not hold it.
  std::shared_ptr<core::EncodedSink> mjpeg_sink();
  // The codec the clients get (H.264 or MJPEG), while streaming.
  std::optional<stream::VideoCodec> codec() const;
  // spice-gtk decodes with avdec_h264's frame threads, which hold one picture back: without a
  // following access unit, the last change (a keystroke) would show only at the next keep-alive.
  // Only a client streaming H.264 needs it.
  bool wants_trailing_frame() const override { return wants_frames(); }
  StreamStats stats() const;

  // From any thread: the pointer goes to the clients as CURSOR_SET / CURSOR_MOVE, and again to
  // every client that starts the stream.
  void set_cursor(const core::CursorShape& shape, const core::CursorPosition& at);
  void move_cursor(const core::CursorPosition& at);

  // Tests only, from any thread: queue raw bytes on the device (e.g. a message type spice-server
  // refuses, to exercise the NOTIFY_ERROR recovery).
  void inject_for_testing(std::vector<uint8_t> bytes);

  struct Handle;
  // spice-server's char-device callbacks, on the desktop's thread.
  static constexpr const char* kDeviceDescription = "vdistream stream device";
  int read(uint8_t* buf, int len);
  int write(const uint8_t* buf, int len);

 private:
  void deliver(const core::EncodedFramePtr& frame);  // desktop thread
  void deliver_jpeg(const core::EncodedFramePtr& frame);
  void send_format(int32_t width, int32_t height);
  void handle(const stream::ServerMessage& message);
  void start(const std::vector<stream::VideoCodec>& codecs);
  void queue(std::vector<uint8_t> bytes);
  void send_cursor();  // the current shape (or an invisible one) and position, if any
  void recover();      // after NOTIFY_ERROR: reopen the device, FORMAT + IDR again

  core::Logger log_;
  glib::LoopThread& thread_;
  core::KeyframeRequester* keyframes_;
  const bool trailing_delimiter_;
  std::unique_ptr<Handle> handle_;
  std::mutex post_mutex_;  // on_encoded's post against detach
  bool detached_ = false;
  std::atomic<bool> streaming_{false};
  std::atomic<stream::VideoCodec> codec_{stream::VideoCodec::H264};  // meaningful while streaming_

  // Desktop thread.
  std::deque<std::vector<uint8_t>> out_;
  size_t out_offset_ = 0, queued_bytes_ = 0;
  stream::ServerMessageParser parser_;
  stream::Pacer pacer_{kMaxQueuedBytes};
  int32_t format_width_ = 0, format_height_ = 0;
  // MJPEG under back-pressure: the newest JPEG waits here (a newer one replaces it) and goes out
  // when the queue has drained, so the client always ends on the latest picture.
  std::optional<std::vector<uint8_t>> waiting_jpeg_;
  bool broken_ = false;
  bool recovering_ = false;
  std::optional<core::CursorShape> cursor_shape_;
  core::CursorPosition cursor_at_;
  mutable std::mutex stats_mutex_;
  StreamStats stats_;
};

}  // namespace vdistream::spice
