// What spice-server writes to our vdagent char device, which carries what a SPICE client's agent
// sends (clipboard grabs, requests and data): AgentReader's VDIChunk/VDAgentMessage reassembly on
// any split, its size limit, and the clipboard payloads of what it hands on. The first input byte
// chooses the cut and the limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <spice/vd_agent.h>

#include "spice/agent_protocol.hpp"

using namespace vdistream;
using namespace vdistream::spice;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = size_t(data[0] & 0x0f) * 7 + 1;
  const size_t limit = (data[0] & 0x10) ? 64 : 4096;
  ++data;
  --size;

  AgentReader reader(limit);
  uint64_t messages = 0, refused = 0;
  AgentReader::Events events;
  events.on_message = [&](AgentMessage m) {
    ++messages;
    require(m.data.size() <= limit);
    require(m.port == VDP_CLIENT_PORT || m.port == VDP_SERVER_PORT);
    if (m.type == VD_AGENT_CLIPBOARD_GRAB || m.type == VD_AGENT_CLIPBOARD_REQUEST || m.type == VD_AGENT_CLIPBOARD ||
        m.type == VD_AGENT_CLIPBOARD_RELEASE) {
      for (bool with_selection : {false, true}) {
        auto parsed = parse_clipboard(m.type, m.data, with_selection);
        if (!parsed) continue;
        require(parsed->data.size() <= m.data.size());
        if (!parsed->data.empty())
          require(parsed->data.data() >= reinterpret_cast<const char*>(m.data.data()) &&
                  parsed->data.data() + parsed->data.size() <= reinterpret_cast<const char*>(m.data.data() + m.data.size()));
      }
    }
  };
  events.on_refused = [&](uint32_t, uint64_t bytes) {
    ++refused;
    require(bytes > limit);
  };
  bool failed = false;
  for (size_t at = 0; at < size; at += piece) {
    core::Status fed = reader.feed(data + at, std::min(piece, size - at), events);
    if (!fed) failed = true;
    else require(!failed);  // after an error, everything is refused
  }
  require(messages + refused <= size / AgentReader::kMessageHeaderSize + 1);
  return 0;
}
