#include "spice/agent_protocol.hpp"

#include <fmt/format.h>
#include <spice/vd_agent.h>

#include <algorithm>
#include <cstring>

namespace vdistream::spice {

namespace {

static_assert(sizeof(VDIChunkHeader) == AgentReader::kChunkHeaderSize);
static_assert(sizeof(VDAgentMessage) == AgentReader::kMessageHeaderSize);

uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

}  // namespace

core::Status AgentReader::feed(const uint8_t* bytes, size_t size, const Events& events) {
  if (!failed_.empty()) return core::Error{failed_};
  while (size > 0) {
    if (chunk_left_ == 0) {
      const size_t take = std::min(size, kChunkHeaderSize - chunk_header_.size());
      chunk_header_.insert(chunk_header_.end(), bytes, bytes + take);
      bytes += take, size -= take;
      if (chunk_header_.size() < kChunkHeaderSize) break;
      chunk_port_ = le32(chunk_header_.data());
      chunk_left_ = le32(chunk_header_.data() + 4);
      chunk_header_.clear();
      if (chunk_port_ != VDP_CLIENT_PORT && chunk_port_ != VDP_SERVER_PORT) {
        failed_ = fmt::format("agent chunk for port {} (the agent has ports {} and {})", chunk_port_,
                              int(VDP_CLIENT_PORT), int(VDP_SERVER_PORT));
        return core::Error{failed_};
      }
      continue;  // an empty chunk is allowed
    }
    const size_t take = size_t(std::min<uint64_t>(size, chunk_left_));
    if (core::Status s = payload(ports_[chunk_port_ - VDP_CLIENT_PORT], chunk_port_, bytes, take, events); !s) {
      failed_ = s.error();
      return s;
    }
    bytes += take, size -= take, chunk_left_ -= take;
  }
  return {};
}

core::Status AgentReader::payload(Port& port, uint32_t port_id, const uint8_t* bytes, size_t size,
                                  const Events& events) {
  while (size > 0) {
    if (!port.in_message) {
      const size_t take = std::min(size, kMessageHeaderSize - port.header.size());
      port.header.insert(port.header.end(), bytes, bytes + take);
      bytes += take, size -= take;
      if (port.header.size() < kMessageHeaderSize) break;
      const uint32_t protocol = le32(port.header.data());
      port.type = le32(port.header.data() + 4);
      port.left = le32(port.header.data() + 16);
      port.header.clear();
      if (protocol != VD_AGENT_PROTOCOL)
        return core::Error{fmt::format("agent message of protocol {} (expected {})", protocol, VD_AGENT_PROTOCOL)};
      port.in_message = true;
      if (port.left > max_data_) {
        if (events.on_refused) events.on_refused(port.type, port.left);
        port.message.reset();
      } else {
        port.message = AgentMessage{port_id, port.type, {}};
        port.message->data.reserve(size_t(port.left));
      }
    }
    const size_t take = size_t(std::min<uint64_t>(size, port.left));
    if (port.message) port.message->data.insert(port.message->data.end(), bytes, bytes + take);
    bytes += take, size -= take, port.left -= take;
    if (port.left == 0) {
      port.in_message = false;
      if (port.message && events.on_message) events.on_message(std::move(*port.message));
      port.message.reset();
    }
  }
  return {};
}

std::vector<uint8_t> agent_chunks(uint32_t type, const std::vector<uint8_t>& data, size_t max_chunk) {
  std::vector<uint8_t> message;
  message.reserve(AgentReader::kMessageHeaderSize + data.size());
  put32(message, VD_AGENT_PROTOCOL);
  put32(message, type);
  put32(message, 0), put32(message, 0);  // opaque
  put32(message, uint32_t(data.size()));
  message.insert(message.end(), data.begin(), data.end());
  std::vector<uint8_t> out;
  out.reserve(message.size() + (message.size() / max_chunk + 1) * AgentReader::kChunkHeaderSize);
  for (size_t at = 0; at < message.size(); at += max_chunk) {
    const size_t n = std::min(max_chunk, message.size() - at);
    put32(out, VDP_CLIENT_PORT);
    put32(out, uint32_t(n));
    out.insert(out.end(), message.begin() + ptrdiff_t(at), message.begin() + ptrdiff_t(at + n));
  }
  return out;
}

core::Result<ClipboardPayload> parse_clipboard(uint32_t type, const std::vector<uint8_t>& data, bool with_selection) {
  ClipboardPayload p;
  size_t at = 0;
  if (with_selection) {
    if (data.size() < 4) return core::Error{fmt::format("agent message {}: {} bytes, no selection", type, data.size())};
    p.selection = data[0];
    at = 4;
  }
  if ((data.size() - at) % 4 != 0 && type != VD_AGENT_CLIPBOARD)
    return core::Error{fmt::format("agent message {}: {} bytes of types is not whole words", type, data.size() - at)};
  if (type == VD_AGENT_CLIPBOARD_GRAB) {
    for (; at + 4 <= data.size(); at += 4) p.words.push_back(le32(data.data() + at));
    return p;
  }
  if (data.size() < at + 4) return core::Error{fmt::format("agent message {}: {} bytes, no type", type, data.size())};
  p.words.push_back(le32(data.data() + at));
  at += 4;
  if (type == VD_AGENT_CLIPBOARD)
    p.data = std::string_view(reinterpret_cast<const char*>(data.data()) + at, data.size() - at);
  else if (at != data.size())
    return core::Error{fmt::format("agent message {}: {} bytes left after the type", type, data.size() - at)};
  return p;
}

std::vector<uint8_t> clipboard_payload(bool with_selection, uint8_t selection, const std::vector<uint32_t>& words,
                                       std::string_view data) {
  std::vector<uint8_t> out;
  out.reserve(4 + words.size() * 4 + data.size());
  if (with_selection) out.insert(out.end(), {selection, 0, 0, 0});
  for (uint32_t w : words) put32(out, w);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

bool AgentOutbox::push(const std::vector<uint8_t>& bytes) {
  if (waiting() + bytes.size() > max_bytes_) return false;
  if (at_ > 0 && at_ >= bytes_.size() / 2) {  // what was read goes before the vector grows
    bytes_.erase(bytes_.begin(), bytes_.begin() + ptrdiff_t(at_));
    at_ = 0;
  }
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  return true;
}

size_t AgentOutbox::read(uint8_t* out, size_t size) {
  const size_t n = std::min(size, waiting());
  if (n == 0) return 0;
  memcpy(out, bytes_.data() + at_, n);
  at_ += n;
  if (at_ == bytes_.size()) clear();
  return n;
}

}  // namespace vdistream::spice
