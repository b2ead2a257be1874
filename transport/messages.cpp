#include "transport/messages.hpp"

#include <glib.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/keymap.hpp"

namespace vdistream::transport {

using nlohmann::json;

namespace {

core::Error refuse(const std::string& why) { return core::Error{why}; }

// A JSON object from text, or why not.
core::Result<json> parse_object(std::string_view text, size_t max_bytes) {
  if (text.size() > max_bytes)
    return refuse("message of " + std::to_string(text.size()) + " bytes > limit " + std::to_string(max_bytes));
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return refuse("not JSON");
  if (!j.is_object()) return refuse("not a JSON object");
  return j;
}

const json* member(const json& j, const char* name, json::value_t type) {
  auto it = j.find(name);
  if (it == j.end() || it->type() != type) return nullptr;
  return &*it;
}

}  // namespace

core::Result<SignalMessage> parse_signal_message(std::string_view text) {
  auto parsed = parse_object(text, kMaxSignalBytes);
  if (!parsed) return core::Error{parsed.error()};
  const json& j = *parsed;
  const json* type = member(j, "type", json::value_t::string);
  if (!type) return refuse("no \"type\" string");
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "sdp") {
    const json* data = member(j, "data", json::value_t::object);
    if (!data) return refuse("sdp: no \"data\" object");
    const json* kind = member(*data, "type", json::value_t::string);
    const json* sdp = member(*data, "sdp", json::value_t::string);
    if (!kind || !sdp) return refuse("sdp: needs data.type and data.sdp strings");
    if (kind->get_ref<const std::string&>() != "answer") return refuse("sdp: only an answer is expected");
    return SignalMessage{SdpAnswer{sdp->get<std::string>()}};
  }
  if (t == "ice") {
    const json* data = member(j, "data", json::value_t::object);
    if (!data) return refuse("ice: no \"data\" object");
    const json* candidate = member(*data, "candidate", json::value_t::string);
    auto index = data->find("sdpMLineIndex");
    if (!candidate || index == data->end() || !index->is_number_unsigned() || index->get<uint64_t>() > 16)
      return refuse("ice: needs data.candidate (string) and data.sdpMLineIndex (0..16)");
    return SignalMessage{IceCandidate{index->get<uint32_t>(), candidate->get<std::string>()}};
  }
  if (t == "frames") {
    const json* frames = member(j, "frames", json::value_t::array);
    if (!frames || frames->size() > 1000) return refuse("frames: needs a \"frames\" array of at most 1000");
    FrameReport report;
    for (const json& f : *frames) {
      if (!f.is_array() || f.size() != 3 || !f[0].is_number_unsigned() || !f[1].is_number() || !f[2].is_number())
        return refuse("frames: each entry is [barcode, receive_ms, present_ms]");
      report.frames.push_back({f[0].get<uint32_t>(), f[1].get<double>(), f[2].get<double>()});
    }
    return SignalMessage{std::move(report)};
  }
  if (t == "stats") {
    ViewerStatsReport s;
    auto number = [&](const char* name, double& out) {
      auto it = j.find(name);
      if (it != j.end() && it->is_number()) out = it->get<double>();
    };
    number("fps", s.fps);
    number("kbps", s.kbps);
    number("rtt_ms", s.rtt_ms);
    number("latency_ms", s.latency_ms);
    return SignalMessage{s};
  }
  if (t == "audio") {
    AudioReport a;
    for (auto [name, out] : {std::pair{"level", &a.level}, {"peak_hz", &a.peak_hz}, {"at_ms", &a.at_ms}}) {
      auto it = j.find(name);
      if (it == j.end() || !it->is_number()) return refuse(std::string("audio: needs a number \"") + name + "\"");
      *out = it->get<double>();
    }
    if (auto onset = j.find("onset_ms"); onset != j.end()) {
      if (!onset->is_number()) return refuse("audio: onset_ms is a number");
      a.onset_ms = onset->get<double>();
    }
    if (!(a.level >= 0 && a.level <= 1) || !(a.peak_hz >= 0 && a.peak_hz <= 96000))
      return refuse("audio: level is 0..1, peak_hz 0..96000");
    return SignalMessage{a};
  }
  if (t == "clipboard") {
    ClipboardReport c;
    auto length = j.find("length"), fnv = j.find("fnv"), wrote = j.find("wrote");
    if (length == j.end() || !length->is_number() || fnv == j.end() || !fnv->is_number() || wrote == j.end() ||
        !wrote->is_boolean())
      return refuse("clipboard: needs numbers \"length\" and \"fnv\" and a boolean \"wrote\"");
    c.length = length->get<double>();
    c.fnv = fnv->get<double>();
    c.wrote = wrote->get<bool>();
    return SignalMessage{c};
  }
  if (t == "microphone") {
    MicrophoneReport m;
    for (auto [name, out] : {std::pair{"available", &m.available}, {"captured", &m.captured}, {"sending", &m.sending}}) {
      const json* flag = member(j, name, json::value_t::boolean);
      if (!flag) return refuse(std::string("microphone: needs a boolean \"") + name + "\"");
      *out = flag->get<bool>();
    }
    return SignalMessage{m};
  }
  if (t == "ice-error") {
    const json* code = member(j, "code", json::value_t::number_unsigned);
    if (!code || code->get<uint64_t>() > 999) return refuse("ice-error: needs a \"code\" of 0..999");
    IceErrorReport e;
    e.code = code->get<int>();
    if (const json* url = member(j, "url", json::value_t::string)) e.url = url->get<std::string>().substr(0, 256);
    if (const json* text = member(j, "text", json::value_t::string)) e.text = text->get<std::string>().substr(0, 256);
    return SignalMessage{std::move(e)};
  }
  return refuse("unknown message type \"" + t.substr(0, 32) + "\"");
}

std::string offer_message(const std::string& sdp) {
  return json{{"type", "sdp"}, {"data", {{"type", "offer"}, {"sdp", sdp}}}}.dump();
}
std::string ice_message(uint32_t mline_index, const std::string& candidate) {
  return json{{"type", "ice"}, {"data", {{"sdpMLineIndex", mline_index}, {"candidate", candidate}}}}.dump();
}
// `why` may quote what the page sent (cut to a length, so maybe inside a UTF-8 character): bytes
// that are not UTF-8 become U+FFFD rather than an exception.
std::string error_message(const std::string& why) {
  return json{{"type", "error"}, {"message", why}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

core::Result<std::vector<core::InputEvent>> parse_input_message(std::string_view text, int32_t width, int32_t height) {
  auto parsed = parse_object(text, kMaxInputBytes);
  if (!parsed) return core::Error{parsed.error()};
  const json& j = *parsed;
  const json* type = member(j, "t", json::value_t::string);
  if (!type) return refuse("input: no \"t\" string");
  const std::string& t = type->get_ref<const std::string&>();
  auto flag = [&](const char* name) -> std::optional<bool> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_boolean()) return std::nullopt;
    return it->get<bool>();
  };
  auto integer = [&](const char* name) -> std::optional<int64_t> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number()) return std::nullopt;
    double v = it->get<double>();
    if (!(v > -1e9 && v < 1e9)) return std::nullopt;
    return int64_t(v);
  };
  std::vector<core::InputEvent> events;
  if (t == "key") {
    const json* code = member(j, "code", json::value_t::string);
    auto down = flag("down");
    if (!code || !down) return refuse("key: needs \"code\" string and \"down\" boolean");
    auto qnum = core::qnum_from_key_code(code->get_ref<const std::string&>());
    if (!qnum) return refuse("key: unknown KeyboardEvent.code \"" + code->get<std::string>().substr(0, 32) + "\"");
    events.push_back(core::InputEvent::key(*qnum, *down));
  } else if (t == "move") {
    auto x = integer("x"), y = integer("y");
    if (!x || !y) return refuse("move: needs numbers \"x\" and \"y\"");
    events.push_back(core::InputEvent::move_to(int32_t(std::clamp<int64_t>(*x, 0, std::max(0, width - 1))),
                                               int32_t(std::clamp<int64_t>(*y, 0, std::max(0, height - 1)))));
  } else if (t == "button") {
    auto b = integer("b");
    auto down = flag("down");
    if (!b || !down) return refuse("button: needs \"b\" number and \"down\" boolean");
    static constexpr core::MouseButton kDom[] = {core::MouseButton::Left, core::MouseButton::Middle,
                                                 core::MouseButton::Right, core::MouseButton::Side,
                                                 core::MouseButton::Extra};
    if (*b < 0 || *b > 4) return refuse("button: \"b\" must be a DOM button number 0..4");
    events.push_back(core::InputEvent::button_event(kDom[*b], *down));
  } else if (t == "wheel") {
    auto dy = integer("dy");
    if (!dy || *dy == 0) return refuse("wheel: needs a non-zero \"dy\"");
    auto button = *dy < 0 ? core::MouseButton::WheelUp : core::MouseButton::WheelDown;
    events.push_back(core::InputEvent::button_event(button, true));
    events.push_back(core::InputEvent::button_event(button, false));
  } else {
    return refuse("input: unknown \"t\" \"" + t.substr(0, 32) + "\"");
  }
  return events;
}

std::string cursor_shape_message(const core::CursorShape& shape) {
  std::vector<uint8_t> rgba;
  rgba.reserve(shape.argb.size() * 4);
  for (uint32_t p : shape.argb) {
    uint32_t a = p >> 24;
    auto straight = [a](uint32_t c) { return uint8_t(a ? std::min<uint32_t>(255, c * 255 / a) : 0); };
    rgba.push_back(straight((p >> 16) & 255));
    rgba.push_back(straight((p >> 8) & 255));
    rgba.push_back(straight(p & 255));
    rgba.push_back(uint8_t(a));
  }
  gchar* b64 = g_base64_encode(rgba.data(), rgba.size());
  std::string out = json{{"t", "cursor"}, {"w", shape.width}, {"h", shape.height}, {"hx", shape.hot_x},
                         {"hy", shape.hot_y}, {"rgba", b64}}.dump();
  g_free(b64);
  return out;
}

std::string cursor_position_message(const core::CursorPosition& p) {
  return json{{"t", "pos"}, {"x", p.x}, {"y", p.y}, {"visible", p.visible}}.dump();
}

std::string desktop_size_message(int32_t width, int32_t height) {
  return json{{"t", "size"}, {"w", width}, {"h", height}}.dump();
}

std::string microphone_listening_message(bool listening) {
  return json{{"t", "mic"}, {"listening", listening}}.dump();
}

bool is_clipboard_message(std::string_view text) {
  // The page writes "t" first; a message that is not a piece fails its full parse anyway.
  return text.substr(0, 16).find("\"clip\"") != std::string_view::npos;
}

core::Result<ClipboardPiece> parse_clipboard_piece(std::string_view text) {
  auto parsed = parse_object(text, kMaxClipboardPieceBytes);
  if (!parsed) return core::Error{parsed.error()};
  const json& j = *parsed;
  const json* type = member(j, "t", json::value_t::string);
  if (!type || type->get_ref<const std::string&>() != "clip") return refuse("clipboard: \"t\" is not \"clip\"");
  const json* piece = member(j, "text", json::value_t::string);
  auto more = j.find("more");
  if (!piece || more == j.end() || !more->is_boolean())
    return refuse("clipboard: needs a \"text\" string and a \"more\" boolean");
  return ClipboardPiece{piece->get<std::string>(), more->get<bool>()};
}

std::vector<std::string> clipboard_messages(std::string_view text) {
  std::vector<std::string> out;
  size_t at = 0;
  do {
    size_t n = std::min(kClipboardPieceText, text.size() - at);
    // Not inside a UTF-8 character: back off over continuation bytes (10xxxxxx).
    while (n > 0 && at + n < text.size() && (uint8_t(text[at + n]) & 0xC0) == 0x80) --n;
    if (n == 0) n = std::min(kClipboardPieceText, text.size() - at);  // not UTF-8 after all: cut anyway
    const bool more = at + n < text.size();
    out.push_back(json{{"t", "clip"}, {"text", std::string(text.substr(at, n))}, {"more", more}}.dump(
        -1, ' ', false, json::error_handler_t::replace));
    at += n;
  } while (at < text.size());
  return out;
}

std::string clipboard_refused_message(const std::string& why) {
  return json{{"t", "clip-refused"}, {"why", why}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace vdistream::transport
