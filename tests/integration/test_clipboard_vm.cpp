// The clipboard with a real QEMU (7.2 and 10): vdistreamd registers with QEMU's D-Bus Clipboard,
// a spice-glib client finds our agent offering clipboard by demand, and the text it copies is
// claimed in QEMU's clipboard (QEMU takes our Grab; nothing refused). With QEMU's VNC server as a
// second clipboard peer, QEMU asks us for the text (Request) and gives it to a VNC client. The
// guest has no clipboard peer of its own: the VM → client half runs against a GDBus peer in
// QEMU's role (tests/unit/test_qemu_clipboard.cpp) and a fake VM (test_spice_clipboard,
// test_webrtc_clipboard).
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "benchmarks/clients/spice_client.hpp"
#include "benchmarks/guest_vm.hpp"
#include "fixtures/browser.hpp"
#include "fixtures/guest.hpp"
#include "fixtures/process.hpp"
#include "fixtures/vnc_clipboard.hpp"
#include "fixtures/wait.hpp"
#include "test_service_fixture.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

void serve(test::Service& s, const bench::GuestVm& vm, const std::string& extra) {
  s.start(test::http_section(s.port) + "[[desktop]]\nname = \"vm\"\nsource = \"" + vm.spec() + "\"\nspice = \"unix:" +
          s.dir.file("vm.sock") + "\"\nspice_no_auth = true\naudio = false\n" + extra);
  REQUIRE_LOGGED(s, test::eventually([&] { return test::desktops(s.port)["vm"]["connected"] == true; }, 60s));
}

}  // namespace

TEST_CASE("a SPICE client's copy is claimed in a real QEMU's clipboard through our agent", "[clipboard][vm]") {
  const bench::Qemu qemu = GENERATE(bench::Qemu::Host72, bench::Qemu::V10);
  INFO(bench::qemu_name(qemu));
  bench::GuestVmOptions options;
  options.qemu = qemu;
  options.workload = "idle";
  auto vm = test::boot_guest(options);
  test::Service s;
  serve(s, *vm, "clipboard_max_bytes = 64\n");
  INFO("vdistreamd log:\n" << s.log());
  REQUIRE(test::eventually([&] { return test::desktops(s.port)["vm"]["clipboard"]["vm_connected"] == true; }, 20s));
  bench::SpiceClient client(bench::SpiceClientOptions{.unix_path = s.dir.file("vm.sock")});
  REQUIRE(client.wait_outcome(30s) == bench::SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_agent_clipboard(20s));
  client.copy("copied in remote-viewer ✓");
  REQUIRE(test::eventually([&] { return test::desktops(s.port)["vm"]["clipboard"]["to_vm"] == 1; }, 10s));
  // Past the limit (64 bytes): refused, counted, the last copy stays QEMU's.
  client.copy(std::string(100, 'x'));
  REQUIRE(test::eventually([&] { return test::desktops(s.port)["vm"]["clipboard"]["refused"] == 1; }, 10s));
  auto d = test::desktops(s.port)["vm"]["clipboard"];
  INFO(d.dump());
  CHECK(d["to_vm"] == 1);
  CHECK(d["owner"] == "viewer");
  CHECK(d["spice"]["client_agent"] == true);
  CHECK(d["spice"]["client_copies"] == 1);
  CHECK(s.log().find("refused our grab") == std::string::npos);
  CHECK_STOPS_CLEANLY(s);
}

// QEMU's own VNC server as a second clipboard peer inside QEMU (where a guest agent would be):
// QEMU really hands our text to another party, asking us for it (its Request) when that party
// pastes. The other way cannot be shown with it: QEMU's D-Bus clipboard passes on only grabs that
// carry a serial (ui/dbus-clipboard.c), which a guest agent's do and a VNC client's do not.
TEST_CASE("through a real QEMU's clipboard: what a spice-glib client and Chromium's page copy is what QEMU's VNC client pastes",
          "[clipboard][vm]") {
  const bench::Qemu qemu = GENERATE(bench::Qemu::Host72, bench::Qemu::V10);
  INFO(bench::qemu_name(qemu));
  test::TempDir dir;
  const std::string vnc_socket = dir.file("vnc.sock");
  bench::GuestVmOptions options;
  options.qemu = qemu;
  options.workload = "idle";
  options.extra_args = {"-vnc", "unix:" + vnc_socket};
  auto vm = test::boot_guest(options);
  test::Service s;
  serve(s, *vm, "webrtc = true\n");
  INFO("vdistreamd log:\n" << s.log());
  REQUIRE(test::eventually([&] { return test::desktops(s.port)["vm"]["clipboard"]["vm_connected"] == true; }, 20s));
  auto vnc = test::VncClipboardClient::connect(vnc_socket, 20s);
  INFO(vnc.error());
  REQUIRE(vnc);
  bench::SpiceClient client(bench::SpiceClientOptions{.unix_path = s.dir.file("vm.sock")});
  REQUIRE(client.wait_outcome(30s) == bench::SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_agent_clipboard(20s));

  // Copied in the SPICE client: QEMU takes our grab, tells the VNC client, and when it asks,
  // QEMU asks us (Request) and passes our answer on.
  client.copy("copied in the SPICE client ✓");
  auto pasted = (*vnc)->wait_paste(20s);
  INFO((*vnc)->error());
  REQUIRE(pasted);
  CHECK(*pasted == "copied in the SPICE client ✓");
  auto d = test::desktops(s.port)["vm"]["clipboard"];
  INFO(d.dump());
  CHECK(d["to_vm"] == 1);
  CHECK(d["vm_pastes"].get<uint64_t>() >= 1);  // QEMU asked us for the text
  CHECK(d["owner"] == "viewer");

  // Pasted in Chromium's page (its paste event, as Ctrl+V gives it): the same way to the VNC client.
  const auto browser = test::launch_chromium(fmt::format(
      "http://127.0.0.1:{}/desktops/vm/?token={}&selftest=clipboard&copy=copied%20in%20the%20browser", s.port, test::kToken));
  INFO("Chromium: " << browser->log_path());
  pasted = (*vnc)->wait_paste(60s);
  INFO((*vnc)->error());
  REQUIRE(pasted);
  CHECK(*pasted == "copied in the browser");
  CHECK(test::desktops(s.port)["vm"]["clipboard"]["to_vm"] == 2);
  CHECK_STOPS_CLEANLY(s);
}

TEST_CASE("clipboard = false: no agent for SPICE clients and nothing registered with QEMU", "[clipboard][vm]") {
  bench::GuestVmOptions options;
  options.workload = "idle";
  auto vm = test::boot_guest(options);
  test::Service s;
  serve(s, *vm, "clipboard = false\n");
  bench::SpiceClient client(bench::SpiceClientOptions{.unix_path = s.dir.file("vm.sock")});
  REQUIRE(client.wait_outcome(30s) == bench::SpiceClient::Outcome::Opened);
  CHECK(!client.wait_agent_clipboard(3s));
  CHECK(test::desktops(s.port)["vm"]["clipboard"].is_null());
  CHECK(s.log().find("clipboard") == std::string::npos);
  CHECK_STOPS_CLEANLY(s);
}
