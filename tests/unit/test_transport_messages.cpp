// Signalling and data-channel messages: what is accepted, what is refused, and why.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "transport/messages.hpp"
#include "transport/webrtc_desktop.hpp"

using namespace vdistream;
using namespace vdistream::transport;

TEST_CASE("Signalling: an SDP answer and ICE candidates are read and anything else is refused with a reason") {
  auto answer = parse_signal_message(R"({"type":"sdp","data":{"type":"answer","sdp":"v=0\r\n"}})");
  REQUIRE(answer);
  REQUIRE(std::holds_alternative<SdpAnswer>(*answer));
  CHECK(std::get<SdpAnswer>(*answer).sdp == "v=0\r\n");

  auto ice = parse_signal_message(R"({"type":"ice","data":{"sdpMLineIndex":0,"candidate":"candidate:1 1 UDP 1 127.0.0.1 5000 typ host"}})");
  REQUIRE(ice);
  CHECK(std::get<IceCandidate>(*ice).mline_index == 0);

  auto frames = parse_signal_message(R"({"type":"frames","frames":[[7,1000.5,1010.25],[8,1033,1040]]})");
  REQUIRE(frames);
  REQUIRE(std::get<FrameReport>(*frames).frames.size() == 2);
  CHECK(std::get<FrameReport>(*frames).frames[1].barcode == 8);

  CHECK(parse_signal_message("not json").error() == "not JSON");
  CHECK(parse_signal_message("[1,2]").error() == "not a JSON object");
  CHECK(!parse_signal_message(R"({"data":{}})"));
  CHECK(parse_signal_message(R"({"type":"shutdown"})").error() == "unknown message type \"shutdown\"");
  CHECK(!parse_signal_message(R"({"type":"sdp","data":{"type":"offer","sdp":"v=0"}})"));  // we make the offers
  CHECK(!parse_signal_message(R"({"type":"sdp","data":"v=0"})"));
  CHECK(!parse_signal_message(R"({"type":"ice","data":{"sdpMLineIndex":-1,"candidate":"x"}})"));
  CHECK(!parse_signal_message(R"({"type":"ice","data":{"sdpMLineIndex":0}})"));
  CHECK(!parse_signal_message(R"({"type":"frames","frames":[[1,2]]})"));
  std::string huge = R"({"type":"sdp","data":{"type":"answer","sdp":")" + std::string(kMaxSignalBytes, 'x') + "\"}}";
  CHECK(parse_signal_message(huge).error().find("> limit") != std::string::npos);
}

TEST_CASE("Offers and candidates go out as the page expects them") {
  auto offer = nlohmann::json::parse(offer_message("v=0\r\n"));
  CHECK(offer["type"] == "sdp");
  CHECK(offer["data"]["type"] == "offer");
  CHECK(offer["data"]["sdp"] == "v=0\r\n");
  auto ice = nlohmann::json::parse(ice_message(0, "candidate:x"));
  CHECK(ice["data"]["sdpMLineIndex"] == 0);
  CHECK(ice["data"]["candidate"] == "candidate:x");
}

TEST_CASE("Input: KeyboardEvent.code becomes a qnum - pointer in desktop pixels clamped - DOM buttons - wheel") {
  auto key = parse_input_message(R"({"t":"key","code":"KeyA","down":true})", 1280, 720);
  REQUIRE(key);
  REQUIRE(key->size() == 1);
  CHECK((*key)[0].type == core::InputEvent::Type::Key);
  CHECK((*key)[0].qnum == 0x1e);
  CHECK((*key)[0].pressed);
  auto up = parse_input_message(R"({"t":"key","code":"ArrowUp","down":false})", 1280, 720);
  REQUIRE(up);
  CHECK((*up)[0].qnum == 0xc8);  // 0x80 | 0x48: an extended key
  CHECK(!(*up)[0].pressed);

  auto move = parse_input_message(R"({"t":"move","x":640,"y":360})", 1280, 720);
  REQUIRE(move);
  CHECK((*move)[0].type == core::InputEvent::Type::MoveAbsolute);
  CHECK((*move)[0].x == 640);
  CHECK((*move)[0].y == 360);
  auto outside = parse_input_message(R"({"t":"move","x":5000,"y":-20})", 1280, 720);
  REQUIRE(outside);
  CHECK((*outside)[0].x == 1279);
  CHECK((*outside)[0].y == 0);

  auto right = parse_input_message(R"({"t":"button","b":2,"down":true})", 1280, 720);
  REQUIRE(right);
  CHECK((*right)[0].button == core::MouseButton::Right);
  auto wheel = parse_input_message(R"({"t":"wheel","dy":-1})", 1280, 720);
  REQUIRE(wheel);
  REQUIRE(wheel->size() == 2);  // a click of the wheel-up button
  CHECK((*wheel)[0].button == core::MouseButton::WheelUp);
  CHECK((*wheel)[0].pressed);
  CHECK(!(*wheel)[1].pressed);

  CHECK(!parse_input_message(R"({"t":"key","code":"NoSuchKey","down":true})", 1280, 720));
  CHECK(!parse_input_message(R"({"t":"key","code":"KeyA"})", 1280, 720));
  CHECK(!parse_input_message(R"({"t":"button","b":9,"down":true})", 1280, 720));
  CHECK(!parse_input_message(R"({"t":"move","x":"1","y":2})", 1280, 720));
  CHECK(!parse_input_message(R"({"t":"reboot"})", 1280, 720));
  CHECK(!parse_input_message(std::string(2000, ' '), 1280, 720));
}

TEST_CASE("Cursor images go to the page with straight alpha") {
  core::CursorShape shape;
  shape.width = 2;
  shape.height = 1;
  shape.hot_x = 1;
  shape.argb = {0x80400000u, 0xff00ff00u};  // premultiplied half-transparent red, opaque green
  auto j = nlohmann::json::parse(cursor_shape_message(shape));
  CHECK(j["t"] == "cursor");
  CHECK(j["w"] == 2);
  CHECK(j["hx"] == 1);
  CHECK(j["rgba"] == "fwAAgAD/AP8=");  // 7f 00 00 80 | 00 ff 00 ff
  auto pos = nlohmann::json::parse(cursor_position_message({10, 20, false}));
  CHECK(pos["x"] == 10);
  CHECK(pos["visible"] == false);
}

TEST_CASE("The web client is embedded in the binary") {
  CHECK(web_asset("index.html").find("<video") != std::string_view::npos);
  CHECK(web_asset("client.js").find("RTCPeerConnection") != std::string_view::npos);
  CHECK(web_asset("nothing.txt").empty());
}

TEST_CASE("Signalling: the page's microphone report is read and the host's listening message is written") {
  auto mic = parse_signal_message(R"({"type":"microphone","available":true,"captured":true,"sending":false})");
  REQUIRE(mic);
  REQUIRE(std::holds_alternative<MicrophoneReport>(*mic));
  CHECK(std::get<MicrophoneReport>(*mic).available);
  CHECK(std::get<MicrophoneReport>(*mic).captured);
  CHECK(!std::get<MicrophoneReport>(*mic).sending);
  CHECK(parse_signal_message(R"({"type":"microphone","available":true,"captured":1,"sending":false})").error() ==
        "microphone: needs a boolean \"captured\"");
  CHECK(!parse_signal_message(R"({"type":"microphone","available":true})"));
  CHECK(microphone_listening_message(true) == R"({"listening":true,"t":"mic"})");
  CHECK(microphone_listening_message(false) == R"({"listening":false,"t":"mic"})");
}

TEST_CASE("Signalling: the page's audio report is read and a report out of range is refused") {
  auto audio = parse_signal_message(R"({"type":"audio","level":0.25,"peak_hz":1000.5,"at_ms":1733400000000.5})");
  REQUIRE(audio);
  REQUIRE(std::holds_alternative<AudioReport>(*audio));
  CHECK(std::get<AudioReport>(*audio).level == 0.25);
  CHECK(std::get<AudioReport>(*audio).peak_hz == 1000.5);
  CHECK(std::get<AudioReport>(*audio).onset_ms == 0);
  auto onset = parse_signal_message(R"({"type":"audio","level":0.5,"peak_hz":440,"at_ms":20,"onset_ms":10.5})");
  REQUIRE(onset);
  CHECK(std::get<AudioReport>(*onset).onset_ms == 10.5);
  CHECK(!parse_signal_message(R"({"type":"audio","level":0.5,"peak_hz":440,"at_ms":20,"onset_ms":"now"})"));
  CHECK(parse_signal_message(R"({"type":"audio","level":0.25,"at_ms":1})").error() == "audio: needs a number \"peak_hz\"");
  CHECK(!parse_signal_message(R"({"type":"audio","level":2,"peak_hz":1,"at_ms":1})"));
  CHECK(!parse_signal_message(R"({"type":"audio","level":0.1,"peak_hz":-5,"at_ms":1})"));
  CHECK(!parse_signal_message(R"({"type":"audio","level":"loud","peak_hz":1,"at_ms":1})"));
}

// Found by tests/fuzz/fuzz_webrtc_messages: a refusal quotes the first 32 bytes of what the page
// sent, which may end inside a UTF-8 character; the error sent back to the page then failed to
// dump (nlohmann::json throws on invalid UTF-8) on the HTTP server's thread, ending vdistreamd.
TEST_CASE("Signalling: a refusal that quotes the page's text cut inside a UTF-8 character is still a JSON error message") {
  const std::string cut(31, 'x');  // the quote is 32 bytes: it ends after the first byte of é
  auto signal = parse_signal_message(R"({"type":")" + cut + "\xc3\xa9\"}");
  REQUIRE(!signal);
  auto input = parse_input_message(R"({"t":"key","code":")" + cut + "\xc3\xa9\",\"down\":true}", 640, 480);
  REQUIRE(!input);
  for (const std::string& why : {signal.error(), input.error()}) {
    INFO(why);
    std::string message;
    REQUIRE_NOTHROW(message = error_message("refused: " + why));
    auto j = nlohmann::json::parse(message);
    CHECK(j["type"] == "error");
    CHECK(j["message"].get<std::string>().find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD where the cut was
  }
}
