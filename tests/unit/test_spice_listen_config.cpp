// How vdistreamd's --spice, --spice-ticket-file and --spice-tls-dir are read.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "spice/listen_config.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream::spice;

namespace {

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = std::string(P_tmpdir) + "/vdistream-test-" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("SPICE listen addresses: host:port, [v6]:port, :port, port and unix:path") {
  auto a = parse_listen_address("127.0.0.1:5901");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 5901);
  CHECK(!a->is_unix());
  CHECK(a->to_string() == "127.0.0.1:5901");

  auto v6 = parse_listen_address("[::1]:5902");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->to_string() == "[::1]:5902");

  auto port_only = parse_listen_address(":5903");
  REQUIRE(port_only);
  CHECK(port_only->host == "127.0.0.1");  // loopback unless asked otherwise
  CHECK(parse_listen_address("5904")->port == 5904);

  auto unix_socket = parse_listen_address("unix:/run/vdistream/desk.sock");
  REQUIRE(unix_socket);
  CHECK(unix_socket->is_unix());
  CHECK(unix_socket->unix_path == "/run/vdistream/desk.sock");
}

TEST_CASE("bad SPICE listen addresses are refused with a readable reason") {
  CHECK_THAT(parse_listen_address("127.0.0.1:99999").error(), Catch::Contains("0 to 65535"));
  CHECK_THAT(parse_listen_address("localhost:abc").error(), Catch::Contains("'abc'"));
  CHECK_THAT(parse_listen_address("::1:5900").error(), Catch::Contains("[ADDRESS]:PORT"));
  CHECK_THAT(parse_listen_address("unix:").error(), Catch::Contains("socket path"));
  CHECK_THAT(parse_listen_address("unix:/" + std::string(200, 'x')).error(), Catch::Contains("107"));
}

TEST_CASE("a ticket file holds the password and an optional lifetime, and errors never show the password") {
  auto plain = read_ticket_file(write_file("ticket1", "hunter2-horse\n"));
  REQUIRE(plain);
  CHECK(plain->password == "hunter2-horse");
  CHECK(plain->lifetime_seconds == 0);

  auto expiring = read_ticket_file(write_file("ticket2", "hunter2-horse\nlifetime=600\n"));
  REQUIRE(expiring);
  CHECK(expiring->lifetime_seconds == 600);

  auto bad = read_ticket_file(write_file("ticket3", "hunter2-horse\nexpires soon\n"));
  REQUIRE(!bad);
  CHECK_THAT(bad.error(), Catch::Contains("lifetime=SECONDS"));
  CHECK_THAT(bad.error(), !Catch::Contains("hunter2"));

  CHECK_THAT(read_ticket_file(write_file("ticket4", "\n")).error(), Catch::Contains("no password"));
  CHECK_THAT(read_ticket_file("/nonexistent/ticket").error(), Catch::Contains("cannot read"));
}

TEST_CASE("generated passwords are 16 characters and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    const std::string p = generate_password();
    CHECK(p.size() == 16);
    seen.insert(p);
  }
  CHECK(seen.size() == 20);
}

TEST_CASE("a TLS directory must hold ca-cert.pem, server-cert.pem and server-key.pem") {
  CHECK_THAT(tls_files_in("/nonexistent").error(), Catch::Contains("ca-cert.pem"));
}

TEST_CASE("SPICE modes parse, and a desktop without a ticket needs an explicit --no-auth") {
  CHECK(*parse_spice_mode("qxl") == SpiceMode::Qxl);
  CHECK(*parse_spice_mode("stream") == SpiceMode::Stream);
  CHECK_THAT(parse_spice_mode("vnc").error(), Catch::Contains("qxl or stream"));

  SpiceConfig config;
  config.listen.port = 0;
  auto refused = SpiceDesktop::create(config, nullptr);
  REQUIRE(!refused);
  CHECK_THAT(refused.error(), Catch::Contains("--no-auth"));
}

TEST_CASE("vdistreamd's SPICE options are checked together") {
  SpiceOptions o;
  o.address = "127.0.0.1:5930";
  CHECK_THAT(spice_config_from_options(o, "d").error(), Catch::Contains("--spice-ticket-file"));

  o.no_auth = true;
  auto open = spice_config_from_options(o, "d");
  REQUIRE(open);
  CHECK(open->no_auth);
  CHECK(open->mode == SpiceMode::Qxl);
  CHECK(open->listen.port == 5930);
  CHECK_FALSE(open->lossy);  // lossless unless asked for
  o.lossy = true;
  CHECK(spice_config_from_options(o, "d")->lossy);
  o.lossy = false;

  o.ticket_file = write_file("ticket5", "pw\n");
  CHECK_THAT(spice_config_from_options(o, "d").error(), Catch::Contains("contradict"));

  o.no_auth = false;
  o.mode = "stream";
  auto ticketed = spice_config_from_options(o, "d");
  REQUIRE(ticketed);
  CHECK(ticketed->ticket->password == "pw");
  CHECK(ticketed->mode == SpiceMode::Stream);

  o.address = "unix:/tmp/x.sock";
  o.tls_dir = "/nonexistent";
  CHECK_THAT(spice_config_from_options(o, "d").error(), Catch::Contains("unix socket"));
  o.address = "localhost:nope";
  CHECK_THAT(spice_config_from_options(o, "d").error(), Catch::Contains("'nope'"));
}
