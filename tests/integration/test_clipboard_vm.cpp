// The clipboard with a real QEMU (7.2 and 10): vdistreamd registers with QEMU's D-Bus Clipboard,
// a spice-glib client finds our agent offering clipboard by demand, and the text it copies is
// claimed in QEMU's clipboard (QEMU takes our Grab; nothing refused). The guest has no clipboard
// peer of its own, so QEMU never asks for the text here: that half, and the VM → client half,
// run against a GDBus peer in QEMU's role (tests/unit/test_qemu_clipboard.cpp).
#include <catch2/catch.hpp>

#include "benchmarks/clients/spice_client.hpp"
#include "benchmarks/guest_vm.hpp"
#include "fixtures/guest.hpp"
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
