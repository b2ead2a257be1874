// vdistreamd --config serving the project's test guest as an operator would serve a VM: a VM with
// two heads as two desktops (one per console), and a VM that dies and comes back while a SPICE
// client stays connected.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "benchmarks/guest_vm.hpp"
#include "core/clock.hpp"
#include "fixtures/guest.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "test_service_fixture.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {


std::string vm_desktop(const std::string& name, const std::string& source, const std::string& socket) {
  return "[[desktop]]\nname = \"" + name + "\"\nsource = \"" + source + "\"\nspice = \"unix:" + socket +
         "\"\nspice_no_auth = true\n\n";
}

// The barcode values the guest reported for `head` in its current boot.
std::set<uint64_t> reported(const bench::GuestVm& vm, int head) {
  std::set<uint64_t> values;
  for (const auto& f : vm.frames())
    if (f.head == head && f.boot == vm.boot()) values.insert(f.value & 0xffffff);
  return values;
}

}  // namespace

TEST_CASE("a two-head VM is two desktops: each console's picture reaches its own SPICE client", "[service][vm]") {
  bench::GuestVmOptions options;
  options.qemu = bench::Qemu::V10;
  options.heads = 2;
  options.workload = "window-drag";  // head 0: its barcode counts frames
  options.workload1 = "idle";        // head 1: drawn once, its barcode stays 0
  auto vm = test::boot_guest(options);           // declared first: destroyed after the service
  test::Service s;
  s.start(test::http_section(s.port) + vm_desktop("head0", vm->spec() + "#console=0", s.dir.file("head0.sock")) +
          vm_desktop("head1", vm->spec() + "#console=1", s.dir.file("head1.sock")));

  REQUIRE_LOGGED(s, test::eventually(
                        [&] {
                          auto d = test::desktops(s.port);
                          return d.size() == 2 && d["head0"]["connected"] == true && d["head1"]["connected"] == true &&
                                 test::captured(d, "head0") > 0 && test::captured(d, "head1") > 0;
                        },
                        60s));
  auto d = test::desktops(s.port);
  INFO(d["head0"].dump() << "\n" << d["head1"].dump());
  CHECK(d["head0"]["source"].get<std::string>().ends_with("#console=0"));
  CHECK(d["head1"]["source"].get<std::string>().ends_with("#console=1"));
  CHECK(d["head0"]["capture"]["frames"].get<uint64_t>() > 0);
  CHECK(d["head1"]["capture"]["frames"].get<uint64_t>() > 0);

  {
    bench::SpiceClient client({.unix_path = s.dir.file("head0.sock")});
    REQUIRE(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
    REQUIRE_LOGGED(s, test::eventually([&] { return client.barcodes().size() >= 10; }, 30s));
    const auto head0 = reported(*vm, 0);
    const auto seen = client.barcodes();
    INFO(vm->diagnostics());
    for (const auto& b : seen) CHECK(head0.count(b.barcode) == 1);
    CHECK(seen.back().barcode > seen.front().barcode);
  }
  {
    bench::SpiceClient client({.unix_path = s.dir.file("head1.sock")});
    REQUIRE(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
    REQUIRE(client.wait_barcode(0, 30s));  // the idle head's one picture, not head 0's moving one
    std::this_thread::sleep_for(1s);
    const auto seen = client.barcodes();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].barcode == 0);
    auto picture = client.picture();
    REQUIRE(picture);
    CHECK(picture->width == options.width);
    CHECK(picture->height == options.height);
  }
  CHECK_STOPS_CLEANLY(s);
}

TEST_CASE("a VM killed and started again under a connected SPICE client comes back in that client", "[service][vm]") {
  bench::GuestVmOptions options;
  options.qemu = bench::Qemu::Host72;
  options.workload = "window-drag";
  auto vm = test::boot_guest(options);
  test::Service s;
  s.start(test::http_section(s.port) + vm_desktop("vm", vm->spec(), s.dir.file("vm.sock")));
  REQUIRE_LOGGED(s, test::eventually([&] { return test::captured(test::desktops(s.port), "vm") > 0; }, 60s));

  bench::SpiceClient client({.unix_path = s.dir.file("vm.sock")});
  REQUIRE(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
  REQUIRE_LOGGED(s, test::eventually([&] { return client.barcodes().size() >= 5; }, 30s));

  vm->kill_qemu();
  REQUIRE_LOGGED(s, test::eventually([&] { return test::desktops(s.port)["vm"]["connected"] == false; }, 30s));
  const int64_t restarted_ns = core::monotonic_now_ns();
  REQUIRE(vm->restart_qemu().ok());
  auto ready = vm->wait_ready(0, 90s);
  if (!ready) FAIL(ready.error());

  // The same client, never reconnected, shows barcodes the new boot drew.
  REQUIRE_LOGGED(s, test::eventually(
                        [&] {
                          const auto fresh = reported(*vm, 0);
                          const auto seen = client.barcodes();
                          return std::count_if(seen.begin(), seen.end(), [&](const auto& b) {
                                   return b.at_ns > restarted_ns && fresh.count(b.barcode);
                                 }) >= 5;
                        },
                        60s));
  auto d = test::desktops(s.port);
  INFO(d["vm"].dump());
  CHECK(d["vm"]["connected"] == true);
  CHECK(d["vm"]["source_connections"].get<uint64_t>() == 2);
  CHECK(d["vm"]["viewers"].get<uint64_t>() == 1);  // the client stayed
  CHECK_STOPS_CLEANLY(s);
}
