#include "spice/stream_producer.hpp"

#include <spice.h>
#include <spice/protocol.h>

#include <algorithm>
#include <cstring>

#include "spice/char_device.hpp"

namespace vdistream::spice {

struct StreamProducer::Handle : CharDevice<StreamProducer> {
  using CharDevice::CharDevice;
};

namespace {

constexpr const char* kPortName = "org.spice-space.stream.0";

}  // namespace

StreamProducer::StreamProducer(const core::Logger& log, glib::LoopThread& thread, core::KeyframeRequester* keyframes,
                               bool trailing_delimiter)
    : log_(log),
      thread_(thread),
      keyframes_(keyframes),
      trailing_delimiter_(trailing_delimiter),
      handle_(std::make_unique<Handle>(this, "port", kPortName)) {}

StreamProducer::~StreamProducer() = default;

SpiceBaseInstance* StreamProducer::instance() { return &handle_->sin()->base; }

void StreamProducer::attached() { spice_server_port_event(handle_->sin(), SPICE_PORT_EVENT_OPENED); }

void StreamProducer::detach() {
  std::lock_guard lock(post_mutex_);
  detached_ = true;
  streaming_ = false;
}

void StreamProducer::on_encoded(const core::EncodedFramePtr& frame) {
  if (!streaming_ || !frame) return;
  std::lock_guard lock(post_mutex_);
  if (detached_) return;
  thread_.post([this, frame] { deliver(frame); });
}

namespace {

// Hands JPEGs to the producer while the stream is MJPEG.
class MjpegSink final : public core::EncodedSink {
 public:
  explicit MjpegSink(std::shared_ptr<StreamProducer> producer) : producer_(std::move(producer)) {}
  void on_encoded(const core::EncodedFramePtr& frame) override { producer_->on_encoded(frame); }
  bool wants_frames() const override { return producer_->codec() == stream::VideoCodec::Mjpeg; }

 private:
  std::shared_ptr<StreamProducer> producer_;
};

}  // namespace

std::shared_ptr<core::EncodedSink> StreamProducer::mjpeg_sink() { return std::make_shared<MjpegSink>(shared_from_this()); }

std::optional<stream::VideoCodec> StreamProducer::codec() const {
  if (!streaming_) return std::nullopt;
  return codec_.load();
}

void StreamProducer::set_cursor(const core::CursorShape& shape, const core::CursorPosition& at) {
  std::lock_guard lock(post_mutex_);
  if (detached_) return;
  thread_.post([this, shape, at] {
    cursor_shape_ = shape;
    cursor_at_ = at;
    if (streaming_ && !broken_) send_cursor();
  });
}

void StreamProducer::move_cursor(const core::CursorPosition& at) {
  std::lock_guard lock(post_mutex_);
  if (detached_) return;
  thread_.post([this, at] {
    const bool visibility_changed = at.visible != cursor_at_.visible;
    cursor_at_ = at;
    if (!streaming_ || broken_ || !cursor_shape_) return;
    if (visibility_changed) {
      send_cursor();  // shown or hidden: the shape changes
      return;
    }
    queue(stream::cursor_move_message(at.x, at.y));
    std::lock_guard stats_lock(stats_mutex_);
    ++stats_.cursor_messages;
  });
}

void StreamProducer::send_cursor() {
  if (!cursor_shape_) return;
  auto set = stream::cursor_set_message(cursor_at_.visible ? *cursor_shape_ : stream::invisible_cursor());
  if (!set) {
    log_.warn("pointer image not sent: {}", set.error());
    return;
  }
  queue(std::move(*set));
  queue(stream::cursor_move_message(cursor_at_.x, cursor_at_.y));
  std::lock_guard lock(stats_mutex_);
  stats_.cursor_messages += 2;
}

void StreamProducer::inject_for_testing(std::vector<uint8_t> bytes) {
  std::lock_guard lock(post_mutex_);
  if (detached_) return;
  thread_.post([this, bytes = std::move(bytes)]() mutable { queue(std::move(bytes)); });
}

void StreamProducer::send_format(int32_t width, int32_t height) {
  format_width_ = width;
  format_height_ = height;
  queue(stream::format_message(uint32_t(width), uint32_t(height), codec_));
  std::lock_guard lock(stats_mutex_);
  ++stats_.formats_sent;
}

void StreamProducer::deliver_jpeg(const core::EncodedFramePtr& frame) {
  if (frame->width != format_width_ || frame->height != format_height_) {
    waiting_jpeg_.reset();  // of the old size: the FORMAT below would not describe it
    send_format(frame->width, frame->height);
  }
  auto message = stream::data_message(frame->data);
  if (!message) {
    log_.warn("{}", message.error());
    return;
  }
  if (queued_bytes_ > kMaxQueuedBytes) {
    // spice-server is not reading: every JPEG is a whole picture, so only the newest matters.
    const bool replaced = waiting_jpeg_.has_value();
    waiting_jpeg_ = std::move(*message);
    std::lock_guard lock(stats_mutex_);
    if (replaced) ++stats_.jpegs_replaced;
    return;
  }
  queue(std::move(*message));
  std::lock_guard lock(stats_mutex_);
  ++stats_.jpegs_sent;
}

void StreamProducer::deliver(const core::EncodedFramePtr& frame) {
  if (!streaming_ || broken_) return;
  if (codec_ == stream::VideoCodec::Mjpeg) {
    if (frame->codec == core::Codec::Mjpeg) deliver_jpeg(frame);
    return;
  }
  if (frame->codec != core::Codec::H264) return;  // queued before the stream changed codec
  if (frame->width != format_width_ || frame->height != format_height_) {
    send_format(frame->width, frame->height);
    if (!frame->keyframe) pacer_.reset();
  }
  using D = stream::Pacer::Decision;
  const D decision = pacer_.on_access_unit(frame->keyframe, queued_bytes_);
  if (decision != D::Send) {
    if (decision == D::DropAndRequestIdr && keyframes_) keyframes_->request_keyframe();
    std::lock_guard lock(stats_mutex_);
    ++stats_.dropped;
    return;
  }
  auto message = stream::data_message(frame->data, trailing_delimiter_);
  if (!message) {
    log_.warn("{}", message.error());
    return;
  }
  queue(std::move(*message));
  std::lock_guard lock(stats_mutex_);
  ++stats_.access_units_sent;
}

void StreamProducer::queue(std::vector<uint8_t> bytes) {
  queued_bytes_ += bytes.size();
  out_.push_back(std::move(bytes));
  spice_server_char_device_wakeup(handle_->sin());
}

int StreamProducer::read(uint8_t* buf, int len) {
  size_t copied = 0;
  for (;;) {
    if (waiting_jpeg_ && queued_bytes_ <= kMaxQueuedBytes / 2) {
      // spice-server reads again: the newest picture goes out (no wakeup needed from in here).
      queued_bytes_ += waiting_jpeg_->size();
      out_.push_back(std::move(*waiting_jpeg_));
      waiting_jpeg_.reset();
      std::lock_guard lock(stats_mutex_);
      ++stats_.jpegs_sent;
    }
    if (copied >= size_t(len) || out_.empty()) break;
    const std::vector<uint8_t>& front = out_.front();
    const size_t n = std::min(size_t(len) - copied, front.size() - out_offset_);
    std::memcpy(buf + copied, front.data() + out_offset_, n);
    copied += n;
    out_offset_ += n;
    queued_bytes_ -= n;
    if (out_offset_ == front.size()) {
      out_.pop_front();
      out_offset_ = 0;
    }
  }
  return int(copied);
}

int StreamProducer::write(const uint8_t* buf, int len) {
  parser_.feed(buf, size_t(len));
  while (!broken_) {
    auto message = parser_.next();
    if (!message) {
      log_.error("{}; SPICE stream mode stops", message.error());
      broken_ = true;
      streaming_ = false;
      break;
    }
    if (!*message) break;
    handle(**message);
  }
  return len;
}

void StreamProducer::handle(const stream::ServerMessage& message) {
  switch (message.type) {
    case stream::MessageType::StartStop: {
      auto codecs = stream::parse_start_stop(message.payload);
      if (!codecs) {
        log_.warn("{}", codecs.error());
        return;
      }
      start(*codecs);
      return;
    }
    case stream::MessageType::NotifyError: {
      std::string text;
      if (message.payload.size() > 4)  // u32 error_code, then a NUL-terminated message
        text.assign(reinterpret_cast<const char*>(message.payload.data()) + 4,
                    strnlen(reinterpret_cast<const char*>(message.payload.data()) + 4, message.payload.size() - 4));
      log_.error("spice-server reports a stream device error ({}); reopening the device", text);
      recover();
      return;
    }
    default:
      return;  // CAPABILITIES: we use none of them
  }
}

void StreamProducer::recover() {
  // spice-server has disabled the device and drains whatever we queue. What is queued is lost
  // anyway; reopening the port (not from inside its write callback) resets the device and its
  // stream channel, which asks the clients again: START_STOP, then FORMAT + IDR as usual.
  out_.clear();
  out_offset_ = queued_bytes_ = 0;
  waiting_jpeg_.reset();
  if (recovering_) return;
  recovering_ = true;
  std::lock_guard lock(post_mutex_);
  if (detached_) return;
  thread_.post([this] {
    recovering_ = false;
    // Again: access units delivered since the error went into a queue the device drains.
    out_.clear();
    out_offset_ = queued_bytes_ = 0;
    waiting_jpeg_.reset();
    parser_ = stream::ServerMessageParser();
    format_width_ = format_height_ = 0;
    pacer_.reset();
    spice_server_port_event(handle_->sin(), SPICE_PORT_EVENT_CLOSED);
    spice_server_port_event(handle_->sin(), SPICE_PORT_EVENT_OPENED);
    {
      std::lock_guard stats_lock(stats_mutex_);
      ++stats_.errors_recovered;
    }
    if (streaming_ && keyframes_) keyframes_->request_keyframe();
  });
}

void StreamProducer::start(const std::vector<stream::VideoCodec>& codecs) {
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.start_stops;
  }
  if (codecs.empty()) {
    log_.info("SPICE stream stopped (no client wants it)");
    streaming_ = false;
    return;
  }
  // H.264 is our encoder's: no second encode, the lowest bandwidth. MJPEG is what every spice-gtk
  // decodes without GStreamer (its built-in libjpeg decoder): a client without a GStreamer H.264
  // decoder (no gstreamer1.0-libav) still gets a picture. A START_STOP lists what every
  // connected client decodes, so one such client moves them all to MJPEG.
  auto chosen = stream::choose_codec(codecs, {stream::VideoCodec::H264, stream::VideoCodec::Mjpeg});
  if (!chosen) {
    log_.warn("the SPICE clients decode neither H.264 nor MJPEG; nothing is streamed");
    streaming_ = false;
    return;
  }
  const bool changed = !streaming_ || codec_ != *chosen;
  // A client that joined needs FORMAT again and then an IDR (a whole picture): forget the size
  // so the next frame carries a FORMAT, and wait for the IDR asked for here.
  format_width_ = format_height_ = 0;
  waiting_jpeg_.reset();
  pacer_.reset();
  codec_ = *chosen;
  streaming_ = true;
  if (keyframes_) keyframes_->request_keyframe();
  send_cursor();
  if (changed)
    log_.info("SPICE stream started ({})", *chosen == stream::VideoCodec::H264
                                              ? "H.264"
                                              : "MJPEG: a client has no H.264 decoder (GStreamer's avdec_h264, "
                                                "gstreamer1.0-libav); more bandwidth and CPU than H.264");
}

StreamStats StreamProducer::stats() const {
  std::lock_guard lock(stats_mutex_);
  StreamStats out = stats_;
  out.streaming = streaming_;
  if (out.streaming) out.codec = codec_ == stream::VideoCodec::H264 ? "h264" : "mjpeg";
  return out;
}

}  // namespace vdistream::spice
