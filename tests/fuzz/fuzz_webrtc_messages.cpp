// What a browser sends: signalling and report messages on the WebSocket, input and clipboard
// pieces on the data channel. Every parser sees every input; what they accept must be within
// bounds (coordinates inside the desktop, a clipboard piece within its limit).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <string>

#include "transport/messages.hpp"

using namespace vdistream;
using namespace vdistream::transport;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // A refusal goes back to the page as {"type":"error","message":"refused: ..."} (WebRtcDesktop).
  if (auto signal = parse_signal_message(text); !signal) (void)error_message("refused: " + signal.error());

  constexpr int32_t kWidth = 1280, kHeight = 720;
  auto events = parse_input_message(text, kWidth, kHeight);
  if (!events) (void)error_message(events.error());
  if (events) {
    for (const core::InputEvent& e : *events) {
      if (e.type == core::InputEvent::Type::MoveAbsolute)
        require(e.x >= 0 && e.x < kWidth && e.y >= 0 && e.y < kHeight);
      if (e.type == core::InputEvent::Type::Key) require(e.qnum != 0 && e.qnum <= 0xff);
    }
  }

  if (is_clipboard_message(text)) {
    if (auto piece = parse_clipboard_piece(text)) require(piece->text.size() <= size);
    else (void)clipboard_refused_message(piece.error());
  }
  // What the host sends back must parse as what it sent: its own pieces of the input as text.
  if (size <= 3 * kClipboardPieceText) {
    std::string joined;
    for (const std::string& message : clipboard_messages(text)) {
      require(message.size() <= kMaxClipboardPieceBytes);
      auto piece = parse_clipboard_piece(message);
      require(bool(piece));
      joined += piece->text;
    }
    bool ascii = true;
    for (char c : text) ascii = ascii && uint8_t(c) < 0x80;
    if (ascii) require(joined == text);  // (other bytes may be invalid UTF-8, which JSON replaces)
  }
  return 0;
}
