// The clipboard between a real spice-glib client and the VM through our vdagent device
// (spice/agent), with a fake VM side (no QEMU here; a real QEMU's half is test_clipboard_vm): the
// VM's copy offered to the client (GRAB) and given when it asks; the client's copy fetched at once
// and what the VM pastes; copies past the hub's limit refused, both ways, without ending anything.
#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "benchmarks/child_process.hpp"
#include "benchmarks/clients/remote_viewer.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/clipboard.hpp"
#include "fixtures/fake_vm_clipboard.hpp"
#include "fixtures/process.hpp"
#include "fixtures/synthetic.hpp"
#include "fixtures/wait.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;
using bench::SpiceClient;

namespace {

constexpr auto kWait = 10s;

// A QXL desktop whose SPICE server shares a clipboard hub; the hub's VM is a FakeVmClipboard.
struct ClipboardDesktop {
  explicit ClipboardDesktop(size_t max_bytes = core::kDefaultClipboardMaxBytes)
      : hub(std::make_shared<core::ClipboardHub>("spice-clipboard-test", max_bytes)), vm(hub) {
    source = test::make_source(capture::Workload::WindowDrag);
    spice::SpiceConfig config;
    config.name = "spice-clipboard-test";
    config.listen.port = port = test::free_tcp_port();
    config.no_auth = true;
    config.clipboard = hub;
    auto d = spice::SpiceDesktop::create(config, nullptr);
    INFO(d.error());
    REQUIRE(d);
    desktop = std::move(*d);
  }
  // Serves the next frame; its barcode.
  uint32_t push() {
    auto frame = source->render_next();
    REQUIRE(frame);
    REQUIRE(desktop->on_frame(*frame));
    return uint32_t(frame->sequence);
  }
  bench::SpiceClientOptions client() const {
    bench::SpiceClientOptions o;
    o.port = port;
    return o;
  }

  std::shared_ptr<core::ClipboardHub> hub;
  test::FakeVmClipboard vm;
  std::unique_ptr<capture::SyntheticSource> source;
  std::unique_ptr<spice::SpiceDesktop> desktop;  // goes first: its agent leaves the hub
  int port = 0;
};

std::string repeat(std::string_view text, size_t times) {
  std::string out;
  out.reserve(text.size() * times);
  for (size_t i = 0; i < times; ++i) out += text;
  return out;
}

// Several scripts and a 4-byte character; a text of many agent chunks (2 KiB each).
const std::string kShortText = "Grüße, 世界 ✓ 🎉\n\t\"quoted\" \\ end";
const std::string kLongText = repeat("𝄞 é – line of the VM's clipboard\n", 1000);  // 39000 bytes

}  // namespace

TEST_CASE("The VM's copy reaches a spice-glib client through our agent - also one that connects later",
          "[spice][clipboard]") {
  ClipboardDesktop d(64 * 1024);
  d.push();
  // Copied before the client: offered once the client's agent says it shares its clipboard.
  d.vm.copy(kShortText);
  REQUIRE(test::eventually([&] { return d.hub->stats().from_vm == 1; }, kWait));
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_agent_clipboard(kWait));
  auto first = client.wait_vm_text(1, kWait);
  REQUIRE(first);
  CHECK(*first == kShortText);
  CHECK(client.agent_grabs() == 1);

  // While it is connected: a text of many agent chunks.
  d.vm.copy(kLongText);
  auto second = client.wait_vm_text(2, kWait);
  REQUIRE(second);
  CHECK(second->size() == kLongText.size());
  CHECK((*second == kLongText));  // (not printed: 39000 bytes)
  CHECK(client.agent_grabs() == 2);

  // Past the limit: the hub refuses it, the client is offered nothing, the next copy comes.
  d.vm.copy(std::string(64 * 1024 + 1, 'v'));
  REQUIRE(test::eventually([&] { return d.hub->stats().refused == 1; }, kWait));
  d.vm.copy("after the refusal");
  auto third = client.wait_vm_text(3, kWait);
  REQUIRE(third);
  CHECK(*third == "after the refusal");
  CHECK(client.agent_grabs() == 3);

  CHECK(d.vm.grabs() == 0);  // nothing went back to the VM
  // The agent counts on its thread after it sent: the client may have the text a moment before.
  CHECK(test::eventually([&] {
    const auto agent = d.desktop->agent_stats();
    return agent.client_agent && agent.vm_copies_offered == 3 && agent.pastes == 3;
  }, kWait));
  const auto hub = d.hub->stats();
  CHECK(hub.from_vm == 3);
  CHECK(hub.from_vm_bytes == kShortText.size() + kLongText.size() + std::string_view("after the refusal").size());
  CHECK(hub.owner == "vm");
}

TEST_CASE("A spice-glib client's copy is what the VM pastes - one past the limit is refused and the session goes on",
          "[spice][clipboard]") {
  ClipboardDesktop d(64 * 1024);
  d.push();
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_display(kWait));
  REQUIRE(client.wait_agent_clipboard(kWait));

  client.copy(kShortText);
  REQUIRE(test::eventually([&] { return d.vm.grabs() == 1; }, kWait));
  auto pasted = d.hub->vm_paste();
  REQUIRE(pasted);
  CHECK(*pasted == kShortText);

  client.copy(kLongText);
  REQUIRE(test::eventually([&] { return d.vm.grabs() == 2; }, kWait));
  pasted = d.hub->vm_paste();
  REQUIRE(pasted);
  CHECK((*pasted == kLongText));

  // Exactly the limit (64 KiB) is taken; one byte more is refused, and the VM keeps the last text.
  const std::string at_limit(64 * 1024, 'l');
  client.copy(at_limit);
  REQUIRE(test::eventually([&] { return d.vm.grabs() == 3; }, kWait));
  pasted = d.hub->vm_paste();
  REQUIRE(pasted);
  CHECK((*pasted == at_limit));
  CHECK(d.hub->stats().refused == 0);
  client.copy(std::string(64 * 1024 + 1, 'x'));
  REQUIRE(test::eventually([&] { return d.hub->stats().refused == 1; }, kWait));
  {
    const auto hub = d.hub->stats();
    INFO(hub.last_refusal);
    CHECK(hub.last_refusal.find(std::to_string(64 * 1024)) != std::string::npos);
  }
  CHECK(d.vm.grabs() == 3);
  pasted = d.hub->vm_paste();
  REQUIRE(pasted);
  CHECK((*pasted == at_limit));

  // The session goes on: pictures, a copy each way.
  const uint32_t barcode = d.push();
  CHECK(client.wait_barcode(barcode, kWait));
  client.copy("after the refusal");
  REQUIRE(test::eventually([&] { return d.vm.grabs() == 4; }, kWait));
  pasted = d.hub->vm_paste();
  REQUIRE(pasted);
  CHECK(*pasted == "after the refusal");
  d.vm.copy("the VM's answer");
  auto from_vm = client.wait_vm_text(1, kWait);
  REQUIRE(from_vm);
  CHECK(*from_vm == "the VM's answer");

  // Counted once the hub took it (after the VM's grab).
  CHECK(test::eventually([&] { return d.desktop->agent_stats().client_copies == 4; }, kWait));
  const auto hub = d.hub->stats();
  CHECK(hub.to_vm == 4);
  CHECK(hub.to_vm_bytes ==
        kShortText.size() + kLongText.size() + at_limit.size() + std::string_view("after the refusal").size());
  CHECK(hub.refused == 1);
}

// remote-viewer itself (spice-gtk's clipboard on the X server's CLIPBOARD selection) under Xvfb,
// with xclip as the user's other X application.
TEST_CASE("remote-viewer under Xvfb copies and pastes through our agent - with xclip as the other application",
          "[spice][clipboard][remote-viewer]") {
  REQUIRE(!bench::find_program("xclip").empty());
  ClipboardDesktop d;
  d.push();
  bench::RemoteViewer::Options o;
  o.port = d.port;
  auto viewer = bench::RemoteViewer::launch(o);
  INFO(viewer.error());
  REQUIRE(viewer);
  const std::string display = (*viewer)->display();
  INFO("remote-viewer: " << (*viewer)->log_tail());
  REQUIRE(test::eventually([&] { return d.desktop->agent_stats().client_agent; }, 30s));
  auto x_clipboard = [&] {
    return test::run_process({"env", "DISPLAY=" + display, "xclip", "-selection", "clipboard", "-o"}, 5s).out;
  };

  // The VM copies: remote-viewer takes the X clipboard, and xclip pastes the VM's text.
  d.vm.copy(kShortText);
  CHECK(test::eventually([&] { return x_clipboard() == kShortText; }, 30s));
  // Counted on the agent's thread after it sent: xclip may have the text a moment before.
  CHECK(test::eventually([&] { return d.desktop->agent_stats().pastes >= 1; }, kWait));

  // The user copies in another X application: remote-viewer offers it, and the VM pastes it.
  test::TempDir dir;
  const std::string file = dir.file("copied.txt");
  {
    std::ofstream out(file, std::ios::binary);
    out << "copied in another X application ✓";
  }
  bench::ChildProcess xclip;
  {
    auto started = bench::ChildProcess::spawn({{bench::find_program("xclip"), "-selection", "clipboard", "-quiet", "-i", file},
                                               bench::environment({"DISPLAY"}, {"DISPLAY=" + display}),
                                               dir.file("xclip.log")});
    INFO(started.error());
    REQUIRE(started);
    xclip = std::move(*started);
  }
  REQUIRE(test::eventually([&] { return d.vm.grabs() >= 1; }, 30s));
  auto pasted = d.hub->vm_paste();
  REQUIRE(pasted);
  CHECK(*pasted == "copied in another X application ✓");
  CHECK(d.hub->stats().owner == "viewer");
}
