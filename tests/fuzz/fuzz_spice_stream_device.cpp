// What spice-server writes to our stream device (org.spice-space.stream.0), which carries what a
// SPICE client asked for: ServerMessageParser on any split of any bytes, START_STOP's codec list,
// and the set-1 scancodes spice-server hands our keyboard (ScancodeDecoder). The first input byte
// chooses how the rest is cut into feeds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "spice/scancode.hpp"
#include "spice/stream_protocol.hpp"

using namespace vdistream;
using namespace vdistream::spice;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = size_t(data[0] % 16) + 1;
  ++data;
  --size;

  stream::ServerMessageParser parser;
  bool failed = false;
  for (size_t at = 0; at < size && !failed; at += piece) {
    parser.feed(data + at, std::min(piece, size - at));
    for (;;) {
      auto message = parser.next();
      if (!message) {
        failed = true;  // and from now on everything is refused
        require(!parser.next());
        break;
      }
      if (!*message) break;
      const stream::ServerMessage& m = **message;
      require(m.payload.size() <= stream::kMaxServerMessage);
      require(m.type == stream::MessageType::Capabilities || m.type == stream::MessageType::StartStop ||
              m.type == stream::MessageType::NotifyError);
      if (m.type == stream::MessageType::StartStop) {
        if (auto codecs = stream::parse_start_stop(m.payload)) {
          require(codecs->size() == m.payload[0]);
          (void)stream::choose_codec(*codecs, {stream::VideoCodec::H264, stream::VideoCodec::Mjpeg});
        }
      }
    }
  }

  ScancodeDecoder decoder;
  for (size_t i = 0; i < size; ++i) {
    if (auto key = decoder.feed(data[i])) require(key->qnum != 0 && key->qnum <= 0xff);
  }
  return 0;
}
