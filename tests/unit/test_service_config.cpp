// vdistreamd's TOML configuration: what it accepts, and an error naming the line for each
// thing it refuses.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <fstream>

#include <sys/stat.h>

#include "fixtures/process.hpp"
#include "service/config.hpp"

using namespace vdistream;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// Only the first error's line and text (there may be more).
bool has_error(const service::ConfigParse& p, int line, const std::string& words) {
  for (const auto& e : p.errors)
    if (e.line == line && e.message.find(words) != std::string::npos) return true;
  return false;
}

struct Files {
  test::TempDir dir;
  Files() {
    write(dir.file("a.ticket"), "secret-a\n");
    write(dir.file("b.ticket"), "secret-b\nlifetime=600\n");
    write(dir.file("api.token"), "0123456789abcdef0123456789abcdef\n");
  }
  std::string path() const { return dir.file("vdistreamd.toml"); }
};

const char* kGood = R"([service]
log_level = "debug"

[http]
listen = "127.0.0.1:18080"
token_file = "api.token"

[defaults]
bitrate_kbps = 4000
max_fps = 30

[[desktop]]
name = "vm1"
source = "qemu-dbus:unix:path=/run/libvirt/qemu/dbus/1-vm1.sock"
spice = "127.0.0.1:5901"
spice_ticket_file = "a.ticket"
webrtc = true

[[desktop]]
name = "demo"
source = "synthetic:typing@1280x720@30"
spice = "unix:/tmp/demo.sock"
spice_no_auth = true
spice_lossy = true
bitrate_kbps = 8000
encoders = ["software"]

[[desktop]]
name = "quiet"
source = "synthetic:idle"
spice = ":5903"
spice_ticket_file = "b.ticket"
spice_mode = "stream"
)";

}  // namespace

TEST_CASE("a complete configuration parses, with defaults merged into each desktop", "[service][config]") {
  Files f;
  auto p = service::parse_config(kGood, f.path());
  INFO(p.error_text());
  REQUIRE(p.ok());
  const auto& c = p.config;
  CHECK(c.log_level == "debug");
  CHECK(c.http.host == "127.0.0.1");
  CHECK(c.http.port == 18080);
  CHECK(c.http.token == "0123456789abcdef0123456789abcdef");
  REQUIRE(c.desktops.size() == 3);
  const auto& vm1 = c.desktops[0];
  CHECK(vm1.name == "vm1");
  CHECK(vm1.line == 12);
  CHECK(vm1.encode.bitrate_kbps == 4000);  // from [defaults]
  CHECK(vm1.encode.max_fps == 30);
  REQUIRE(vm1.spice);
  CHECK(vm1.spice->listen.port == 5901);
  REQUIRE(vm1.spice->ticket);
  CHECK(vm1.spice->ticket->password == "secret-a");  // relative to the config file's directory
  CHECK(vm1.webrtc);
  CHECK(vm1.webrtc_token == c.http.token);  // viewers use the service's token by default
  const auto& demo = c.desktops[1];
  CHECK(demo.encode.bitrate_kbps == 8000);  // the desktop's own key wins
  CHECK(demo.encode.encoders == std::vector<std::string>{"software"});
  REQUIRE(demo.spice);
  CHECK(demo.spice->listen.is_unix());
  CHECK(demo.spice->no_auth);
  CHECK(demo.spice->lossy);
  CHECK_FALSE(vm1.spice->lossy);  // lossless unless asked for
  const auto& quiet = c.desktops[2];
  REQUIRE(quiet.spice);
  CHECK(quiet.spice->listen.host == "127.0.0.1");  // loopback unless configured otherwise
  CHECK(quiet.spice->mode == spice::SpiceMode::Stream);
  CHECK(quiet.spice->ticket->lifetime_seconds == 600);
}

TEST_CASE("an unknown key is refused with its line and the keys that are known", "[service][config]") {
  Files f;
  auto p = service::parse_config("[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nbitrate = 5000\n", f.path());
  REQUIRE_FALSE(p.ok());
  CHECK(has_error(p, 4, "unknown key 'bitrate'"));
  CHECK_THAT(p.error_text(), Catch::Contains(f.path() + ":4:"));
  CHECK_THAT(p.error_text(), Catch::Contains("bitrate_kbps"));  // among the known keys
  auto top = service::parse_config("\n[htp]\nlisten = \":8080\"\n", f.path());
  CHECK(has_error(top, 2, "unknown key 'htp'"));
}

TEST_CASE("a value of the wrong type names the key, the type expected and the line", "[service][config]") {
  Files f;
  auto p = service::parse_config(
      "[defaults]\nbitrate_kbps = \"fast\"\n\n[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nwebrtc = "
      "\"yes\"\nencoders = [\"software\", 3]\n",
      f.path());
  REQUIRE_FALSE(p.ok());
  CHECK(has_error(p, 2, "bitrate_kbps must be an integer (kbit/s), not a string"));
  CHECK(has_error(p, 7, "webrtc must be true or false, not a string"));
  CHECK(has_error(p, 8, "every entry must be a string, not an integer"));
}

TEST_CASE("two desktops with one name, or on one port, are refused naming both lines", "[service][config]") {
  Files f;
  auto names = service::parse_config(
      "[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\n\n[[desktop]]\nname = \"a\"\nsource = "
      "\"synthetic:typing\"\n",
      f.path());
  REQUIRE_FALSE(names.ok());
  CHECK(has_error(names, 5, "desktop name 'a' is used twice (first on line 1)"));

  auto ports = service::parse_config(
      "[http]\nlisten = \":5902\"\nno_auth = true\n"
      "[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nspice = \"127.0.0.1:5901\"\nspice_no_auth = true\n"
      "[[desktop]]\nname = \"b\"\nsource = \"synthetic:idle\"\nspice = \"0.0.0.0:5901\"\nspice_no_auth = true\n"
      "[[desktop]]\nname = \"c\"\nsource = \"synthetic:idle\"\nspice = \":5902\"\nspice_no_auth = true\n",
      f.path());
  REQUIRE_FALSE(ports.ok());
  INFO(ports.error_text());
  CHECK(has_error(ports, 9, "desktop 'b' (line 9) listens on TCP port 5901, which desktop 'a' (line 4) already uses"));
  CHECK(has_error(ports, 14, "listens on TCP port 5902, which [http] already uses"));
}

TEST_CASE("a missing ticket or token file is refused with the desktop's line", "[service][config]") {
  Files f;
  auto p = service::parse_config(
      "[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nspice = \":5901\"\nspice_ticket_file = "
      "\"missing.ticket\"\n",
      f.path());
  REQUIRE_FALSE(p.ok());
  INFO(p.error_text());
  CHECK(has_error(p, 5, "cannot read the SPICE ticket file " + f.dir.file("missing.ticket")));

  auto no_ticket = service::parse_config("[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nspice = \":5901\"\n",
                                         f.path());
  CHECK(has_error(no_ticket, 4, "SPICE needs spice_ticket_file"));

  auto token = service::parse_config("[http]\nlisten = \":18080\"\ntoken_file = \"nope.token\"\n", f.path());
  CHECK(has_error(token, 2, "cannot read the token file"));
}

TEST_CASE("bad sources, bounds and syntax errors are explained with their line", "[service][config]") {
  Files f;
  auto p = service::parse_config(
      "[[desktop]]\nname = \"a b\"\nsource = \"synthetic:jumping\"\n"
      "[[desktop]]\nname = \"c\"\nsource = \"vnc:1\"\nbitrate_kbps = 900\nmax_bitrate_kbps = 800\n"
      "[[desktop]]\nsource = \"synthetic:idle\"\nmax_fps = 1000\n",
      f.path());
  REQUIRE_FALSE(p.ok());
  INFO(p.error_text());
  CHECK(has_error(p, 2, "name must be"));
  CHECK(has_error(p, 3, "jumping"));
  CHECK(has_error(p, 6, "'vnc:1' is not a source"));
  CHECK(has_error(p, 4, "min_bitrate_kbps 300 <= bitrate_kbps 900 <= max_bitrate_kbps 800"));
  CHECK(has_error(p, 9, "needs a name"));
  CHECK(has_error(p, 11, "max_fps = 1000 is out of range"));

  auto syntax = service::parse_config("[[desktop]]\nname = \"a\nsource = 1\n", f.path());
  REQUIRE(syntax.errors.size() == 1);
  CHECK(syntax.errors[0].line == 2);
}

TEST_CASE("a desktop's fingerprint changes with its keys and with its ticket's contents", "[service][config]") {
  Files f;
  auto a = service::parse_config(kGood, f.path());
  REQUIRE(a.ok());
  auto same = service::parse_config(kGood, f.path());
  CHECK(a.config.desktops[0].fingerprint() == same.config.desktops[0].fingerprint());
  write(f.dir.file("a.ticket"), "another-secret\n");
  auto new_ticket = service::parse_config(kGood, f.path());
  REQUIRE(new_ticket.ok());
  CHECK(a.config.desktops[0].fingerprint() != new_ticket.config.desktops[0].fingerprint());
  CHECK(a.config.desktops[1].fingerprint() == new_ticket.config.desktops[1].fingerprint());
}

TEST_CASE("a secret's file that others may read is named in a warning with its mode and the fix", "[service][config]") {
  Files f;
  ::chmod(f.dir.file("a.ticket").c_str(), 0644);
  ::chmod(f.dir.file("b.ticket").c_str(), 0620);
  ::chmod(f.dir.file("api.token").c_str(), 0600);
  auto p = service::parse_config(kGood, f.path());
  REQUIRE(p.ok());
  auto joined = [&] {
    std::string all;
    for (const auto& w : p.warnings) all += w + "\n";
    return all;
  };
  INFO(joined());
  CHECK(p.warnings.size() == 2);
  CHECK_THAT(joined(), Catch::Contains("desktop 'vm1': spice_ticket_file " + f.dir.file("a.ticket")) &&
                           Catch::Contains("mode is 0644") && Catch::Contains("chmod 600 " + f.dir.file("a.ticket")));
  CHECK_THAT(joined(), Catch::Contains("desktop 'quiet': spice_ticket_file " + f.dir.file("b.ticket")) &&
                           Catch::Contains("mode is 0620"));
  CHECK_THAT(joined(), !Catch::Contains("api.token"));

  ::chmod(f.dir.file("a.ticket").c_str(), 0600);
  ::chmod(f.dir.file("b.ticket").c_str(), 0400);
  ::chmod(f.dir.file("api.token").c_str(), 0604);
  p = service::parse_config(kGood, f.path());
  REQUIRE(p.ok());
  INFO(joined());
  REQUIRE(p.warnings.size() == 1);
  CHECK_THAT(p.warnings[0], Catch::StartsWith("[http] token_file " + f.dir.file("api.token")));
}

TEST_CASE("[http] without a token, or off loopback without TLS, is served with a warning saying what it exposes",
          "[service][config]") {
  Files f;
  write(f.dir.file("cert.pem"), "not read here\n");
  write(f.dir.file("key.pem"), "not read here\n");
  ::chmod(f.dir.file("key.pem").c_str(), 0600);
  auto warnings = [&](const std::string& http) {
    auto p = service::parse_config(http, f.path());
    INFO(p.error_text());
    REQUIRE(p.ok());
    std::string all;
    for (const auto& w : p.warnings) all += w + "\n";
    return all;
  };
  const std::string open_lan = warnings("[http]\nlisten = \"0.0.0.0:18080\"\nno_auth = true\n");
  CHECK_THAT(open_lan, Catch::Contains("answer anyone who can reach them") && Catch::Contains("0.0.0.0:18080"));
  CHECK_THAT(open_lan, Catch::Contains("without TLS") && Catch::Contains("tls_cert and tls_key"));
  const std::string open_loopback = warnings("[http]\nlisten = \"127.0.0.1:18080\"\nno_auth = true\n");
  CHECK_THAT(open_loopback, Catch::Contains("answer anyone who can reach them"));
  CHECK_THAT(open_loopback, !Catch::Contains("without TLS"));
  ::chmod(f.dir.file("api.token").c_str(), 0600);
  CHECK_THAT(warnings("[http]\nlisten = \"[::]:18080\"\ntoken_file = \"api.token\"\n"),
             Catch::Contains("[::]:18080 is reachable from other hosts without TLS") &&
                 !Catch::Contains("answer anyone"));
  CHECK_THAT(warnings("[http]\nlisten = \"0.0.0.0:18080\"\ntoken_file = \"api.token\"\ntls_cert = \"cert.pem\"\n"
                      "tls_key = \"key.pem\"\n"),
             !Catch::Contains("[http]"));
  CHECK_THAT(warnings("[http]\nlisten = \"127.0.0.1:18080\"\ntoken_file = \"api.token\"\n"), !Catch::Contains("[http]"));
}

TEST_CASE("a configuration without desktops is valid and says it serves nothing", "[service][config]") {
  auto p = service::parse_config("", "empty.toml");
  CHECK(p.ok());
  CHECK(p.config.desktops.empty());
  CHECK(p.warnings.size() == 1);
  auto missing = service::load_config("/nonexistent/vdistreamd.toml");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error_text(), Catch::Contains("/nonexistent/vdistreamd.toml: cannot read"));
}

TEST_CASE("[webrtc] gives every WebRTC desktop its STUN/TURN servers, with the secret read from its file", "[service][config]") {
  Files f;
  write(f.dir.file("turn.secret"), "north-secret\n");
  const std::string webrtc = R"(
[webrtc]
stun = ["stun:10.201.2.1:3478"]
turn = ["turn:10.201.2.1:3478?transport=udp"]
turn_secret_file = "turn.secret"
turn_credential_ttl = 3600
ice_policy = "relay"
udp_ports = "50000-50099"
)";
  auto p = service::parse_config(kGood + webrtc, f.path());
  INFO(p.error_text());
  REQUIRE(p.ok());
  const auto& ice = p.config.desktops[0].ice;  // vm1 has webrtc = true
  CHECK(ice.turn == std::vector<std::string>{"turn:10.201.2.1:3478?transport=udp"});
  CHECK(ice.turn_secret == "north-secret");
  CHECK(ice.turn_ttl_seconds == 3600);
  CHECK(ice.relay_only);
  CHECK(ice.min_port == 50000);
  CHECK(ice.max_port == 50099);
  CHECK(p.config.desktops[1].ice.turn.empty());  // no WebRTC, no ICE servers

  // A new secret restarts the WebRTC desktops (their viewers' credentials change).
  auto before = p.config.desktops[0].fingerprint();
  write(f.dir.file("turn.secret"), "south-secret\n");
  auto again = service::parse_config(kGood + webrtc, f.path());
  REQUIRE(again.ok());
  CHECK(again.config.desktops[0].fingerprint() != before);
}

TEST_CASE("[webrtc] settings that cannot work are refused with the table's line", "[service][config]") {
  Files f;
  write(f.dir.file("empty.secret"), "\n");
  const int line = 35;  // [webrtc], after kGood's 33 lines and an empty one
  auto check = [&](const std::string& body, const std::string& words) {
    auto p = service::parse_config(kGood + std::string("\n[webrtc]\n") + body, f.path());
    INFO(p.error_text());
    CHECK(has_error(p, line, words));
  };
  check("turn = [\"turn:relay.example.org\"]\n", "need credentials");
  check("turn = [\"turn:relay.example.org\"]\nturn_secret_file = \"missing.secret\"\n", "cannot read the TURN shared secret file");
  check("turn = [\"turn:relay.example.org\"]\nturn_secret_file = \"empty.secret\"\n", "is empty");
  check("stun = [\"stun://x\"]\n", "without '//'");
  check("ice_policy = \"relay\"\n", "needs a TURN server");
  auto policy = service::parse_config(kGood + std::string("\n[webrtc]\nice_policy = \"sometimes\"\n"), f.path());
  CHECK(has_error(policy, 36, "expected \"all\" or \"relay\""));
  auto ports = service::parse_config(kGood + std::string("\n[webrtc]\nudp_ports = \"9-8\"\n"), f.path());
  CHECK(has_error(ports, 36, "MIN"));
  auto unknown = service::parse_config(kGood + std::string("\n[webrtc]\nturn_password = \"inline\"\n"), f.path());
  CHECK_FALSE(unknown.ok());
}

TEST_CASE("a desktop's sound is on unless audio = false, and it is part of what restarts the desktop", "[service][config]") {
  Files f;
  auto on = service::parse_config("[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nspice = \"127.0.0.1:5930\"\n"
                                  "spice_no_auth = true\n",
                                  f.path());
  REQUIRE(on.ok());
  CHECK(on.config.desktops[0].audio);
  CHECK(on.config.desktops[0].spice->audio);
  auto off = service::parse_config("[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nspice = \"127.0.0.1:5930\"\n"
                                   "spice_no_auth = true\naudio = false\n",
                                   f.path());
  REQUIRE(off.ok());
  CHECK_FALSE(off.config.desktops[0].audio);
  CHECK_FALSE(off.config.desktops[0].spice->audio);
  CHECK(on.config.desktops[0].fingerprint() != off.config.desktops[0].fingerprint());
  auto typo = service::parse_config("[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\naudio = \"on\"\n", f.path());
  REQUIRE_FALSE(typo.ok());
  CHECK(has_error(typo, 4, "audio must be true or false, not a string"));
}

TEST_CASE("a desktop's microphone is off unless audio_in = true, and it is part of what restarts the desktop", "[service][config]") {
  Files f;
  const std::string base = "[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\nspice = \"127.0.0.1:5930\"\nspice_no_auth = true\n";
  auto off = service::parse_config(base, f.path());
  REQUIRE(off.ok());
  CHECK_FALSE(off.config.desktops[0].audio_in);
  auto on = service::parse_config(base + "audio_in = true\n", f.path());
  REQUIRE(on.ok());
  CHECK(on.config.desktops[0].audio_in);
  CHECK(on.config.desktops[0].fingerprint() != off.config.desktops[0].fingerprint());
  auto typo = service::parse_config(base + "audio_in = 1\n", f.path());
  REQUIRE_FALSE(typo.ok());
  CHECK(has_error(typo, 6, "audio_in must be true or false"));
}

TEST_CASE("more desktops than [service] max_desktops are refused at the first one past it", "[service][config]") {
  Files f;
  std::string text = "[service]\nmax_desktops = 2\n";
  for (int i = 0; i < 3; ++i) text += fmt::format("[[desktop]]\nname = \"d{}\"\nsource = \"synthetic:idle\"\n", i);
  auto p = service::parse_config(text, f.path());
  REQUIRE_FALSE(p.ok());
  INFO(p.error_text());
  CHECK(has_error(p, 9, "3 desktops: this service runs at most 2 ([service] max_desktops"));
  // Two are fine; the default is 64; the key has its range.
  text.resize(text.rfind("[[desktop]]"));
  CHECK(service::parse_config(text, f.path()).ok());
  CHECK(service::parse_config("", f.path()).config.max_desktops == 64);
  CHECK(has_error(service::parse_config("[service]\nmax_desktops = 0\n", f.path()), 2, "max_desktops = 0 is out of range"));
}

TEST_CASE("webrtc_max_viewers is 16 unless set, within 1-256, and part of what restarts the desktop", "[service][config]") {
  Files f;
  const std::string base = "[[desktop]]\nname = \"d\"\nsource = \"synthetic:idle\"\n";
  auto p = service::parse_config(base, f.path());
  REQUIRE(p.ok());
  CHECK(p.config.desktops[0].webrtc_max_viewers == 16);
  auto two = service::parse_config(base + "webrtc_max_viewers = 2\n", f.path());
  REQUIRE(two.ok());
  CHECK(two.config.desktops[0].webrtc_max_viewers == 2);
  CHECK(two.config.desktops[0].fingerprint() != p.config.desktops[0].fingerprint());
  CHECK(has_error(service::parse_config(base + "webrtc_max_viewers = 257\n", f.path()), 4, "webrtc_max_viewers = 257 is out of range"));
}
