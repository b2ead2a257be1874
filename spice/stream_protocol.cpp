#include "spice/stream_protocol.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vdistream::spice::stream {

namespace {

constexpr uint8_t kProtocolVersion = 1;

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(uint8_t(v));
  out.push_back(uint8_t(v >> 8));
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
uint32_t get_u32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

std::vector<uint8_t> header(MessageType type, uint32_t size) {
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize + size);
  out.push_back(kProtocolVersion);
  out.push_back(0);
  put_u16(out, uint16_t(type));
  put_u32(out, size);
  return out;
}

bool known_server_message(uint16_t type) {
  return type == uint16_t(MessageType::Capabilities) || type == uint16_t(MessageType::StartStop) ||
         type == uint16_t(MessageType::NotifyError);
}

}  // namespace

std::vector<uint8_t> format_message(uint32_t width, uint32_t height, VideoCodec codec) {
  auto out = header(MessageType::Format, 12);
  put_u32(out, width);
  put_u32(out, height);
  out.push_back(uint8_t(codec));
  out.insert(out.end(), 3, 0);
  return out;
}

namespace {

constexpr uint8_t kAccessUnitDelimiter[] = {0, 0, 0, 1, 9, 0xf0};  // primary_pic_type 7: any slice

// Bytes of a leading access unit delimiter NAL (with its 3- or 4-byte start code), or 0.
size_t leading_delimiter_size(const std::vector<uint8_t>& au) {
  size_t start = 0;
  if (au.size() >= 4 && au[0] == 0 && au[1] == 0 && au[2] == 0 && au[3] == 1)
    start = 4;
  else if (au.size() >= 3 && au[0] == 0 && au[1] == 0 && au[2] == 1)
    start = 3;
  if (!start || au.size() < start + 2 || (au[start] & 0x1f) != 9) return 0;
  return start + 2;  // NAL header + primary_pic_type byte
}

}  // namespace

core::Result<std::vector<uint8_t>> data_message(const std::vector<uint8_t>& access_unit, bool trailing_delimiter) {
  const size_t skip = trailing_delimiter ? leading_delimiter_size(access_unit) : 0;
  const size_t body = access_unit.size() - skip;
  const size_t size = body + (trailing_delimiter ? sizeof(kAccessUnitDelimiter) : 0);
  if (body == 0) return core::Error{"stream device: empty access unit"};
  if (size > kMaxDataSize)
    return core::Error{fmt::format("stream device: access unit of {} bytes exceeds the {} byte limit of a DATA message",
                                   size, kMaxDataSize)};
  auto out = header(MessageType::Data, uint32_t(size));
  out.insert(out.end(), access_unit.begin() + ptrdiff_t(skip), access_unit.end());
  if (trailing_delimiter) out.insert(out.end(), std::begin(kAccessUnitDelimiter), std::end(kAccessUnitDelimiter));
  return out;
}

core::Result<std::vector<uint8_t>> cursor_set_message(const core::CursorShape& shape) {
  constexpr int32_t kMaxSide = 1024;  // STREAM_MSG_CURSOR_SET_MAX_WIDTH/HEIGHT
  if (shape.width <= 0 || shape.height <= 0 || shape.width > kMaxSide || shape.height > kMaxSide)
    return core::Error{fmt::format("stream device: cursor of {}x{} (1x1 to {}x{} allowed)", shape.width, shape.height,
                                   kMaxSide, kMaxSide)};
  const size_t pixels = size_t(shape.width) * size_t(shape.height);
  if (shape.argb.size() != pixels)
    return core::Error{fmt::format("stream device: cursor of {}x{} carries {} pixels, not {}", shape.width,
                                   shape.height, shape.argb.size(), pixels)};
  // StreamMsgCursorSet: u16 width, height, hot_spot_x, hot_spot_y; u8 type; u8 padding[3]; data.
  auto out = header(MessageType::CursorSet, uint32_t(12 + pixels * 4));
  put_u16(out, uint16_t(shape.width));
  put_u16(out, uint16_t(shape.height));
  put_u16(out, uint16_t(std::clamp(shape.hot_x, 0, shape.width - 1)));
  put_u16(out, uint16_t(std::clamp(shape.hot_y, 0, shape.height - 1)));
  out.push_back(0);  // SPICE_CURSOR_TYPE_ALPHA
  out.insert(out.end(), 3, 0);
  for (uint32_t px : shape.argb) put_u32(out, px);
  return out;
}

core::CursorShape invisible_cursor() {
  core::CursorShape shape;
  shape.width = shape.height = 1;
  shape.argb = {0};
  return shape;
}

std::vector<uint8_t> cursor_move_message(int32_t x, int32_t y) {
  auto out = header(MessageType::CursorMove, 8);
  put_u32(out, uint32_t(x));
  put_u32(out, uint32_t(y));
  return out;
}

void ServerMessageParser::feed(const uint8_t* data, size_t size) { buffer_.insert(buffer_.end(), data, data + size); }

core::Result<std::optional<ServerMessage>> ServerMessageParser::next() {
  // A loop, not a recursion, over the messages a newer server may send that we skip: the server's
  // bytes decide how many there are.
  for (;;) {
    if (!failed_.empty()) return core::Error{failed_};
    if (buffer_.size() < kHeaderSize) return std::optional<ServerMessage>();
    const uint8_t version = buffer_[0];
    const uint16_t type = uint16_t(buffer_[2] | buffer_[3] << 8);
    const uint32_t size = get_u32(&buffer_[4]);
    if (version != kProtocolVersion)
      failed_ = fmt::format("stream device: server speaks protocol {}, we speak {}", version, kProtocolVersion);
    else if (size > kMaxServerMessage)
      failed_ = fmt::format("stream device: server message of {} bytes (type {}) exceeds {}", size, type,
                            kMaxServerMessage);
    if (!failed_.empty()) return core::Error{failed_};
    if (buffer_.size() < kHeaderSize + size) return std::optional<ServerMessage>();
    ServerMessage message{MessageType(type), {buffer_.begin() + kHeaderSize, buffer_.begin() + kHeaderSize + size}};
    buffer_.erase(buffer_.begin(), buffer_.begin() + kHeaderSize + size);
    if (known_server_message(type)) return std::optional<ServerMessage>(std::move(message));
    // else: skip what a newer server may send
  }
}

core::Result<std::vector<VideoCodec>> parse_start_stop(const std::vector<uint8_t>& payload) {
  if (payload.empty()) return core::Error{"stream device: START_STOP without num_codecs"};
  const size_t count = payload[0];
  if (payload.size() < 1 + count)
    return core::Error{fmt::format("stream device: START_STOP lists {} codecs in {} bytes", count, payload.size() - 1)};
  std::vector<VideoCodec> codecs;
  for (size_t i = 0; i < count; ++i) codecs.push_back(VideoCodec(payload[1 + i]));
  return codecs;
}

std::optional<VideoCodec> choose_codec(const std::vector<VideoCodec>& clients, const std::vector<VideoCodec>& ours) {
  for (VideoCodec c : ours)
    if (std::find(clients.begin(), clients.end(), c) != clients.end()) return c;
  return std::nullopt;
}

Pacer::Decision Pacer::on_access_unit(bool keyframe, size_t queued_bytes) {
  if (queued_bytes > max_queued_) {
    // The server stopped reading: this frame cannot go, and the next one that does must be an IDR.
    waiting_for_idr_ = true;
    return Decision::DropAndRequestIdr;
  }
  if (waiting_for_idr_ && !keyframe) return Decision::Drop;
  waiting_for_idr_ = false;
  return Decision::Send;
}

}  // namespace vdistream::spice::stream
