// One captured picture and everything the pipeline learns about it on the way.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/damage.hpp"
#include "core/frame_buffer.hpp"

namespace vdistream::core {

// Stage timestamps on the monotonic clock (core::monotonic_now_ns); 0 = not reached.
struct FrameTimestamps {
  int64_t captured_ns = 0;   // the source finished the frame
  int64_t dequeued_ns = 0;   // the encode thread took it from the slot
  int64_t converted_ns = 0;  // colour conversion / import done
  int64_t encoded_ns = 0;    // access unit ready
};

struct Frame {
  FrameBufferPtr buffer;
  DamageRegion damage;  // relative to the previous frame of the same source
  // False when the source only knows "this area may have changed" (GVT-g's full-frame
  // UpdateDMABUF): the encode side's damage tracker then finds what really changed.
  bool damage_exact = true;
  uint64_t sequence = 0;
  FrameTimestamps timestamps;

  int32_t width() const { return buffer ? buffer->width() : 0; }
  int32_t height() const { return buffer ? buffer->height() : 0; }
};

// MJPEG: one JPEG picture per EncodedFrame, every one a keyframe (SPICE clients without an
// H.264 decoder).
enum class Codec { H264, H265, Mjpeg };
const char* codec_name(Codec c);

// One Annex-B access unit.
struct EncodedFrame {
  Codec codec = Codec::H264;
  std::vector<uint8_t> data;
  bool keyframe = false;
  int32_t width = 0, height = 0;
  uint64_t sequence = 0;  // of the Frame it came from
  FrameTimestamps timestamps;
};

using EncodedFramePtr = std::shared_ptr<const EncodedFrame>;

// Takes access units from a desktop's encoder. Called on the encode thread: must not block.
class EncodedSink {
 public:
  virtual ~EncodedSink() = default;
  virtual void on_encoded(const EncodedFramePtr& frame) = 0;
  // False while the sink is attached but nobody behind it wants video (a SPICE stream device
  // with no client streaming): the encoder then rests. A sink that turns true asks for an IDR.
  virtual bool wants_frames() const { return true; }
  // True for a client whose decoder holds one picture back (spice-gtk's GStreamer decoding with
  // frame threads): it shows the last picture only when another access unit follows. The
  // pipeline then sends one unchanged (skip) frame shortly after the last real one.
  virtual bool wants_trailing_frame() const { return false; }
};

// Takes the desktop's pictures themselves, before any encoder, on the encode thread: for a client
// that needs a codec the desktop's encoder does not make (SPICE MJPEG). Must return quickly: it
// reads what it needs from the buffer (only `frame.damage`, which is relative to the previous
// picture it was given; the whole picture on the first one and after a keyframe request) and
// does its own work elsewhere.
class PictureSink {
 public:
  virtual ~PictureSink() = default;
  virtual void on_picture(const Frame& frame) = 0;
  // False while nobody behind it watches: the pipeline then skips it, and gives it the whole
  // picture again once it turns true.
  virtual bool wants_pictures() const = 0;
};

// What a sink uses to ask for an IDR (after a drop, a join, a decoder error).
class KeyframeRequester {
 public:
  virtual ~KeyframeRequester() = default;
  virtual void request_keyframe() = 0;
};

}  // namespace vdistream::core
