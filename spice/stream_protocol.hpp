// Stream mode, first slice: the stream-device protocol (org.spice-space.stream.0) as bytes, and
// the producer's decisions (codec choice, FORMAT + IDR on START_STOP, drop until IDR under
// back-pressure). Pure: no spice-server here, so every rule is unit-tested. The char-device
// port that carries these bytes is the next slice (see SpiceDesktop::create).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/input.hpp"
#include "core/status.hpp"

namespace vdistream::spice::stream {

// StreamMsgType values of spice-protocol 0.14.3 that spice-server 0.15.1 handles. It disables
// the device on any other type (QUALITY_INDICATOR included), so nothing else is ever built.
enum class MessageType : uint16_t {
  Capabilities = 1,
  Format = 2,
  Data = 3,
  StartStop = 4,
  NotifyError = 5,
  CursorSet = 6,
  CursorMove = 7,
};

// SpiceVideoCodecType.
enum class VideoCodec : uint8_t { Mjpeg = 1, Vp8 = 2, H264 = 3, Vp9 = 4, H265 = 5 };

constexpr size_t kHeaderSize = 8;                  // StreamDevHeader
constexpr uint32_t kMaxDataSize = 32u << 20;       // one access unit per DATA, at most 32 MiB
constexpr uint32_t kMaxServerMessage = 64u << 10;  // what we accept from the server

std::vector<uint8_t> format_message(uint32_t width, uint32_t height, VideoCodec codec);
// One access unit per DATA. With `trailing_delimiter`, a leading access unit delimiter is moved
// to the end (00 00 00 01 09 f0): the client's H.264 parser then knows the access unit is
// complete when it arrives, instead of waiting for the next one to start. Measured on Debian 12
// (reference/spice.md, README): remote-viewer p50 ~10 ms less, spice-glib 405 -> 371 ms. But
// remote-viewer then drops two frames in three (avdec_h264 QoS): likely because the parser
// stamps the next access unit with the time of the DATA its delimiter came in, one frame early,
// so the syncing video sink finds every frame late. Off by default (SpiceConfig).
core::Result<std::vector<uint8_t>> data_message(const std::vector<uint8_t>& access_unit,
                                                bool trailing_delimiter = false);
std::vector<uint8_t> cursor_move_message(int32_t x, int32_t y);
// CURSOR_SET with a SPICE_CURSOR_TYPE_ALPHA image (premultiplied ARGB, as core::CursorShape).
// Refuses an empty image, one larger than 1024x1024, or one whose pixel count is wrong.
core::Result<std::vector<uint8_t>> cursor_set_message(const core::CursorShape& shape);
// A fully transparent 1x1 pointer: the stream device has no "hide".
core::CursorShape invisible_cursor();

struct ServerMessage {
  MessageType type;
  std::vector<uint8_t> payload;
};

// Splits the bytes spice-server writes to the device into messages. A bad header (wrong
// protocol version, oversized) is an error after which the parser refuses everything: the
// producer resets the device.
class ServerMessageParser {
 public:
  // Appends bytes; complete messages come out of next().
  void feed(const uint8_t* data, size_t size);
  core::Result<std::optional<ServerMessage>> next();

 private:
  std::vector<uint8_t> buffer_;
  std::string failed_;
};

// The codecs a START_STOP lists (empty: stop).
core::Result<std::vector<VideoCodec>> parse_start_stop(const std::vector<uint8_t>& payload);

// The first of `ours` (in our order of preference) that the clients can decode.
std::optional<VideoCodec> choose_codec(const std::vector<VideoCodec>& clients, const std::vector<VideoCodec>& ours);

// What the producer does with each access unit: send it, or drop it (and want an IDR) because
// the server has stopped reading, or because it is waiting for an IDR after a drop.
class Pacer {
 public:
  explicit Pacer(size_t max_queued_bytes) : max_queued_(max_queued_bytes) {}
  enum class Decision { Send, Drop, DropAndRequestIdr };
  Decision on_access_unit(bool keyframe, size_t queued_bytes);
  void reset() { waiting_for_idr_ = true; }  // after (re)start: nothing until an IDR
  bool waiting_for_idr() const { return waiting_for_idr_; }

 private:
  size_t max_queued_;
  bool waiting_for_idr_ = true;
};

}  // namespace vdistream::spice::stream
