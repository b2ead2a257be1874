// NAT traversal settings: ICE server URLs, coturn's REST credentials, the page's RTCConfiguration
// and webrtcbin's URI forms.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "transport/ice.hpp"
#include "transport/messages.hpp"

using namespace vdistream::transport;

TEST_CASE("ICE server URLs parse as browsers write them, with default ports") {
  auto stun = parse_ice_url("stun:stun.example.org");
  REQUIRE(stun);
  CHECK(stun->scheme == "stun");
  CHECK(stun->host == "stun.example.org");
  CHECK(stun->port == 3478);

  auto turn = parse_ice_url("turn:10.201.2.1:3479?transport=udp");
  REQUIRE(turn);
  CHECK(turn->host == "10.201.2.1");
  CHECK(turn->port == 3479);
  CHECK(turn->transport == "udp");

  auto turns = parse_ice_url("turns:relay.example.org");
  REQUIRE(turns);
  CHECK(turns->port == 5349);

  auto v6 = parse_ice_url("turn:[2001:db8::1]:3478?transport=tcp");
  REQUIRE(v6);
  CHECK(v6->host == "2001:db8::1");
  CHECK(v6->transport == "tcp");
}

TEST_CASE("malformed ICE server URLs are refused with the reason") {
  for (const char* bad : {"stun.example.org", "http://x:1", "turn://x:3478", "turn:x:0", "turn:x:70000", "turn:x:",
                          "turn:x?transport=sctp", "turns:x?transport=udp", "stun:x?transport=udp", "turn:2001:db8::1",
                          "turn:[2001:db8::1", "turn:bad host", "turn:"}) {
    INFO(bad);
    auto u = parse_ice_url(bad);
    CHECK_FALSE(u);
    if (!u) CHECK(u.error().find(bad) != std::string::npos);
  }
}

TEST_CASE("coturn's REST credentials: EXPIRY:USER and base64(HMAC-SHA1(secret, username))") {
  // The same as: echo -n "1700086400:default.3" | openssl dgst -sha1 -hmac north-secret -binary | base64
  auto c = turn_rest_credentials("north-secret", "default.3", 1700000000, 86400);
  CHECK(c.username == "1700086400:default.3");
  CHECK(c.password == "zpWZdSOl97BCxOGvUJIs708bdfc=");
  CHECK(c.expires_unix == 1700086400);

  IceSettings s;
  s.turn = {"turn:relay.example.org"};
  s.turn_secret = "north-secret";
  s.turn_ttl_seconds = 86400;
  CHECK(viewer_turn_credentials(s, "default.3", 1700000000).password == c.password);
  CHECK(viewer_turn_credentials(s, "default.4", 1700000000).password != c.password);  // per viewer

  IceSettings fixed;
  fixed.turn = {"turn:relay.example.org"};
  fixed.turn_username = "vdi";
  fixed.turn_password = "pw";
  auto f = viewer_turn_credentials(fixed, "default.3", 1700000000);
  CHECK(f.username == "vdi");
  CHECK(f.password == "pw");
  CHECK(f.expires_unix == 0);
}

TEST_CASE("the page's configuration lists the servers with this viewer's credentials and never the secret") {
  IceSettings s;
  s.stun = {"stun:stun.example.org:3478"};
  s.turn = {"turn:relay.example.org:3478", "turns:relay.example.org:5349"};
  s.turn_secret = "north-secret";
  s.relay_only = true;
  auto credentials = viewer_turn_credentials(s, "default.1", 1700000000);
  const std::string text = ice_config_message(s, credentials);
  CHECK(text.find("north-secret") == std::string::npos);
  auto j = nlohmann::json::parse(text);
  CHECK(j["type"] == "config");
  CHECK(j["iceTransportPolicy"] == "relay");
  REQUIRE(j["iceServers"].size() == 2);
  CHECK(j["iceServers"][0]["urls"][0] == "stun:stun.example.org:3478");
  CHECK_FALSE(j["iceServers"][0].contains("username"));
  CHECK(j["iceServers"][1]["urls"].size() == 2);
  CHECK(j["iceServers"][1]["username"] == credentials.username);
  CHECK(j["iceServers"][1]["credential"] == credentials.password);

  auto none = nlohmann::json::parse(ice_config_message(IceSettings{}, {}));
  CHECK(none["iceServers"].empty());
  CHECK(none["iceTransportPolicy"] == "all");
}

TEST_CASE("webrtcbin's URIs carry the credentials percent-encoded") {
  auto turn = parse_ice_url("turn:10.201.2.1:3478?transport=tcp");
  REQUIRE(turn);
  TurnCredentials c{"1700086400:default.3", "a+b/c=", 1700086400};
  CHECK(webrtcbin_turn_uri(*turn, c) == "turn://1700086400%3Adefault.3:a%2Bb%2Fc%3D@10.201.2.1:3478?transport=tcp");
  auto v6 = parse_ice_url("stun:[2001:db8::1]");
  REQUIRE(v6);
  CHECK(webrtcbin_stun_uri(*v6) == "stun://[2001:db8::1]:3478");
}

TEST_CASE("NAT traversal settings that cannot work are refused with each reason") {
  IceSettings ok;
  CHECK(check_ice_settings(ok).empty());
  ok.turn = {"turn:relay.example.org"};
  ok.turn_secret = "s";
  ok.relay_only = true;
  CHECK(check_ice_settings(ok).empty());

  auto one = [](IceSettings s, const std::string& expected) {
    auto problems = check_ice_settings(s);
    INFO(expected);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find(expected) != std::string::npos);
  };
  IceSettings s;
  s.turn = {"turn:relay.example.org"};
  one(s, "need credentials");
  s.turn_username = "u";
  one(s, "need credentials");
  s.turn_password = "p";
  s.turn_secret = "x";
  one(s, "not both");
  IceSettings orphan;
  orphan.turn_secret = "x";
  one(orphan, "without a TURN server");
  IceSettings relay;
  relay.relay_only = true;
  one(relay, "needs a TURN server");
  IceSettings wrong_kind;
  wrong_kind.stun = {"turn:x"};
  one(wrong_kind, "starts with stun:");
  IceSettings ttl = ok;
  ttl.turn_ttl_seconds = 10;
  one(ttl, "60 s to 7 days");

  IceSettings ports;
  CHECK(parse_port_range("50000-50099", ports));
  CHECK(ports.min_port == 50000);
  CHECK(ports.max_port == 50099);
  CHECK_FALSE(parse_port_range("50099-50000", ports));
  CHECK_FALSE(parse_port_range("80-90", ports));
  CHECK_FALSE(parse_port_range("50000", ports));
  CHECK_FALSE(parse_port_range("a-b", ports));
}

TEST_CASE("the page's ICE errors are read with their code, and bounded") {
  auto m = parse_signal_message(R"({"type":"ice-error","url":"turn:10.201.2.1:3478","code":401,"text":"Unauthorized"})");
  REQUIRE(m);
  auto* e = std::get_if<IceErrorReport>(&*m);
  REQUIRE(e);
  CHECK(e->code == 401);
  CHECK(e->url == "turn:10.201.2.1:3478");
  CHECK(e->text == "Unauthorized");
  CHECK_FALSE(parse_signal_message(R"({"type":"ice-error","code":-1})"));
  CHECK_FALSE(parse_signal_message(R"({"type":"ice-error","code":"401"})"));
  auto long_text = parse_signal_message(R"({"type":"ice-error","code":701,"text":")" + std::string(1000, 'x') + "\"}");
  REQUIRE(long_text);
  CHECK(std::get<IceErrorReport>(*long_text).text.size() == 256);
}
