// The SPICE agent protocol (spice-protocol's vd_agent.h) as the agent end speaks it: the bytes a
// vdagent char device exchanges with spice-server are VDIChunks (a port and a size, then the
// bytes of agent messages; a message may span chunks), and each VDAgentMessage is a type and its
// data. AgentReader turns the bytes spice-server writes into whole messages, with a limit on a
// message's size; agent_chunks() turns one message into the chunks to give spice-server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.hpp"

namespace vdistream::spice {

struct AgentMessage {
  uint32_t port = 0;  // VDP_CLIENT_PORT (a client's) or VDP_SERVER_PORT (spice-server's)
  uint32_t type = 0;  // VD_AGENT_*
  std::vector<uint8_t> data;
};

class AgentReader {
 public:
  static constexpr size_t kChunkHeaderSize = 8, kMessageHeaderSize = 20;

  // `max_data`: a message whose data is larger is not kept; its bytes are skipped and on_refused
  // says so, then the stream goes on with the next message.
  explicit AgentReader(size_t max_data) : max_data_(max_data) {}

  struct Events {
    std::function<void(AgentMessage)> on_message;
    std::function<void(uint32_t type, uint64_t size)> on_refused;
  };
  // Any split of the stream: whole messages come out as they complete. An error (a protocol
  // version or port that is not the agent's) leaves the reader refusing everything after it.
  core::Status feed(const uint8_t* bytes, size_t size, const Events& events);

 private:
  struct Port {
    std::vector<uint8_t> header;  // the message header, while incomplete
    std::optional<AgentMessage> message;  // data being gathered (nullopt: skipping)
    uint64_t left = 0;  // data bytes still to come of the current message
    uint32_t type = 0;
    bool in_message = false;
  };
  core::Status payload(Port& port, uint32_t port_id, const uint8_t* bytes, size_t size, const Events& events);

  size_t max_data_;
  std::vector<uint8_t> chunk_header_;
  uint32_t chunk_port_ = 0;
  uint64_t chunk_left_ = 0;
  Port ports_[2];  // client, server
  std::string failed_;
};

// One agent → client message (VDP_CLIENT_PORT) as chunks of at most `max_chunk` bytes of
// payload each (spice-server and its clients use VD_AGENT_MAX_DATA_SIZE, 2048).
std::vector<uint8_t> agent_chunks(uint32_t type, const std::vector<uint8_t>& data, size_t max_chunk = 2048);

// What the agent has said and spice-server has not read yet, bounded: a client that asks for the
// VM's text again and again without reading the answers gets nothing more queued (push() false).
class AgentOutbox {
 public:
  explicit AgentOutbox(size_t max_bytes) : max_bytes_(max_bytes) {}
  bool push(const std::vector<uint8_t>& bytes);  // all or nothing
  size_t read(uint8_t* out, size_t size);        // what spice-server takes
  size_t waiting() const { return bytes_.size() - at_; }
  void clear() { bytes_.clear(), at_ = 0; }

 private:
  size_t max_bytes_;
  std::vector<uint8_t> bytes_;
  size_t at_ = 0;  // bytes_ before it were read
};

// The clipboard messages' leading selection (a byte and three reserved ones), present when both
// ends announced VD_AGENT_CAP_CLIPBOARD_SELECTION.
struct ClipboardPayload {
  uint8_t selection = 0;
  std::vector<uint32_t> words;  // GRAB: types; REQUEST: the type; CLIPBOARD: the type (then data)
  std::string_view data;         // CLIPBOARD: the bytes after the type
};
// Parses GRAB (every remaining word a type), REQUEST and CLIPBOARD (one type word, then data).
core::Result<ClipboardPayload> parse_clipboard(uint32_t type, const std::vector<uint8_t>& data, bool with_selection);
std::vector<uint8_t> clipboard_payload(bool with_selection, uint8_t selection, const std::vector<uint32_t>& words,
                                       std::string_view data = {});

}  // namespace vdistream::spice
