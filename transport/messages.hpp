// What travels between the page and the host, as JSON text: signalling on the WebSocket, input
// and cursor on the data channel. Parsed with nlohmann-json; anything unknown, malformed or too
// large is refused with a reason and changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/input.hpp"
#include "core/status.hpp"

namespace vdistream::transport {

constexpr size_t kMaxSignalBytes = 64 * 1024;  // an SDP answer is a few kB
constexpr size_t kMaxInputBytes = 1024;

// {"type":"sdp","data":{"type":"answer","sdp":"v=0..."}}
struct SdpAnswer {
  std::string sdp;
};
// {"type":"ice","data":{"sdpMLineIndex":0,"candidate":"candidate:..."}}
struct IceCandidate {
  uint32_t mline_index = 0;
  std::string candidate;
};
// {"type":"frames","frames":[[barcode, receive_ms, present_ms], ...]}: what the page decoded,
// on the machine's wall clock (performance.timeOrigin + t).
struct FrameReport {
  struct Entry {
    uint32_t barcode = 0;
    double receive_ms = 0, present_ms = 0;
    double latency_ms = -1;  // captured → presented, filled in by WebRtcDesktop when it knows the frame
  };
  std::vector<Entry> frames;
};
// {"type":"stats","fps":..,"kbps":..,"rtt_ms":..,"latency_ms":..}: the page's overlay figures.
struct ViewerStatsReport {
  double fps = 0, kbps = 0, rtt_ms = 0, latency_ms = -1;
};

// {"type":"ice-error","url":"turn:...","code":401,"text":"Unauthorized"}: the page's
// icecandidateerror, e.g. a TURN server refusing the credentials (401) or not answering (701).
struct IceErrorReport {
  std::string url;  // the STUN/TURN server's URL, at most 256 characters
  int code = 0;
  std::string text;  // at most 256 characters
};

// {"type":"audio","level":0.3,"peak_hz":1000.2,"at_ms":...,"onset_ms":...}: what the page's
// analyser hears of the desktop's sound (RMS level 0..1, the strongest frequency; 0 Hz in
// silence), and when the sound last rose from silence (optional; 0: never), on the machine's
// wall clock.
struct AudioReport {
  double level = 0, peak_hz = 0, at_ms = 0, onset_ms = 0;
};

// {"type":"clipboard","length":12,"fnv":3735928559,"wrote":true}: the page got the VM's text
// (its UTF-8 length and FNV-1a 32-bit hash, never the text) and whether the browser let it into
// the local clipboard (navigator.clipboard.writeText).
struct ClipboardReport {
  double length = 0, fnv = 0;
  bool wrote = false;
};

// {"type":"microphone","available":true,"captured":true,"sending":false}: the page's microphone:
// whether the host offered one (the button is shown), whether the user switched it on (the
// browser captures), and whether its track goes to the host (only while the desktop listens).
struct MicrophoneReport {
  bool available = false, captured = false, sending = false;
};

using SignalMessage = std::variant<SdpAnswer, IceCandidate, FrameReport, ViewerStatsReport, IceErrorReport, AudioReport,
                                   ClipboardReport, MicrophoneReport>;
core::Result<SignalMessage> parse_signal_message(std::string_view text);

std::string offer_message(const std::string& sdp);
std::string ice_message(uint32_t mline_index, const std::string& candidate);
std::string error_message(const std::string& why);

// Data channel input: {"t":"key","code":"KeyA","down":true}, {"t":"move","x":10,"y":20},
// {"t":"button","b":0,"down":true} (DOM button numbers), {"t":"wheel","dy":-1}. Coordinates are
// desktop pixels, clamped to the desktop.
core::Result<std::vector<core::InputEvent>> parse_input_message(std::string_view text, int32_t width, int32_t height);

// Clipboard, both ways on the data channel, as pieces of one text (the channel's messages stay
// small): {"t":"clip","text":"...","more":true}, ..., {"t":"clip","text":"...","more":false}.
// The host tells the page a copy it refused: {"t":"clip-refused","why":"..."}.
constexpr size_t kMaxClipboardPieceBytes = 64 * 1024;  // one piece's JSON
constexpr size_t kClipboardPieceText = 8 * 1024;       // text bytes per piece the host sends
struct ClipboardPiece {
  std::string text;
  bool more = false;
};
bool is_clipboard_message(std::string_view text);  // a quick look at "t" before parsing
core::Result<ClipboardPiece> parse_clipboard_piece(std::string_view text);
// `text` as pieces of at most kClipboardPieceText bytes, cut between UTF-8 characters.
std::vector<std::string> clipboard_messages(std::string_view text);
std::string clipboard_refused_message(const std::string& why);

// Cursor out: {"t":"cursor","w":..,"h":..,"hx":..,"hy":..,"rgba":"<base64, straight alpha>"},
// {"t":"pos","x":..,"y":..,"visible":true}.
std::string cursor_shape_message(const core::CursorShape& shape);
std::string cursor_position_message(const core::CursorPosition& position);
// {"t":"size","w":..,"h":..}: the desktop's size, for the page's coordinate mapping.
std::string desktop_size_message(int32_t width, int32_t height);
// {"t":"mic","listening":true}: the desktop's VM started (or stopped) recording, so the page
// sends its microphone (or stops).
std::string microphone_listening_message(bool listening);

}  // namespace vdistream::transport
