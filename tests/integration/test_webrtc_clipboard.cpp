// The clipboard between a browser and the VM, with Debian's headless Chromium on the desktop's
// page (transport/web/client.js) and a fake VM side (no QEMU here; its half is
// test_qemu_clipboard and test_clipboard_vm): the page's copy (its paste event, driven by the
// ?selftest=clipboard hook) in pieces on the data channel, reassembled into the hub; the VM's
// copy in pieces to the page, which reports its length and FNV-1a hash; a copy past the limit
// refused without harm.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "core/clipboard.hpp"
#include "fixtures/browser.hpp"
#include "fixtures/fake_vm_clipboard.hpp"
#include "fixtures/wait.hpp"
#include "fixtures/webrtc_rig.hpp"
#include "transport/messages.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

// FNV-1a 32 of the text's UTF-8 bytes, as the page hashes (TextEncoder, then byte by byte).
uint32_t fnv1a(std::string_view text) {
  uint32_t h = 0x811c9dc5u;
  for (unsigned char b : text) {
    h ^= b;
    h *= 0x01000193u;
  }
  return h;
}

// A query value as URLSearchParams reads it back: UTF-8 bytes, all but the unreserved escaped.
std::string query_value(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~')
      out += char(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string repeat(std::string_view text, size_t times) {
  std::string out;
  out.reserve(text.size() * times);
  for (size_t i = 0; i < times; ++i) out += text;
  return out;
}

// The page's selftest copies `text` repeated `times` times (its paste event, as Ctrl+V gives it).
std::string copying_page(const test::WebRtcRig& rig, std::string_view text, size_t times = 1) {
  return rig.url() + "&selftest=clipboard&copy=" + query_value(text) + "&copy_repeat=" + std::to_string(times);
}

// A page whose console lines go to Chromium's log (INFO:CONSOLE), where the test can read them.
bench::Chromium::Options logging_page(std::string url) {
  bench::Chromium::Options o;
  o.url = std::move(url);
  o.extra_args = {"--enable-logging=stderr", "--log-level=0"};
  return o;
}

bool logged(const bench::Chromium& browser, std::string_view text) {
  std::ifstream log(browser.log_path());
  const std::string all((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  return all.find(text) != std::string::npos;
}

struct ClipboardRig {
  explicit ClipboardRig(size_t max_bytes = core::kDefaultClipboardMaxBytes)
      : hub(std::make_shared<core::ClipboardHub>("webrtc-clipboard-test", max_bytes)),
        vm(hub),
        rig(options(hub)) {}
  static test::WebRtcRigOptions options(std::shared_ptr<core::ClipboardHub> hub) {
    test::WebRtcRigOptions o;
    o.clipboard = std::move(hub);
    return o;
  }
  // What viewer `id`'s page last reported of the VM's text (nothing yet: length 0, fnv 0).
  transport::ClipboardReport report(uint64_t id) const {
    for (const auto& v : rig.desktop->stats().per_viewer)
      if (v.id == id) return v.clipboard;
    return {};
  }
  // Viewer `id`'s page got exactly `text` (its UTF-8 length and FNV-1a).
  bool page_got(uint64_t id, std::string_view text) const {
    const auto r = report(id);
    return r.length == double(text.size()) && r.fnv == double(fnv1a(text));
  }

  std::shared_ptr<core::ClipboardHub> hub;
  test::FakeVmClipboard vm;  // attached to the hub before any page
  test::WebRtcRig rig;       // goes first: the desktop leaves the hub
};

// Several scripts, JSON's escapes and a character outside the BMP (a surrogate pair in the page).
const std::string kShortText = "Grüße, 世界 ✓ 🎉\n\t\"quoted\" \\ end";

}  // namespace

TEST_CASE("A copy in the page reaches the VM's clipboard exactly - short and in several pieces",
          "[webrtc][clipboard]") {
  REQUIRE(bench::Chromium::available());
  ClipboardRig r;
  {
    const auto browser = test::launch_chromium(copying_page(r.rig, kShortText));
    INFO("Chromium log: " << browser->log_path());
    REQUIRE(test::eventually([&] { return r.vm.grabs() == 1; }, 60s));
    auto pasted = r.hub->vm_paste();
    REQUIRE(pasted);
    CHECK(*pasted == kShortText);
  }
  // 5000 × "a𝄞" is 15000 UTF-16 code units, 25000 UTF-8 bytes: two pieces, the first cut where
  // the page's 8192nd code unit would split a surrogate pair.
  const std::string pattern = "a𝄞";
  const std::string long_text = repeat(pattern, 5000);
  {
    const auto browser = test::launch_chromium(copying_page(r.rig, pattern, 5000));
    INFO("Chromium log: " << browser->log_path());
    REQUIRE(test::eventually([&] { return r.vm.grabs() == 2; }, 60s));
    auto pasted = r.hub->vm_paste();
    REQUIRE(pasted);
    CHECK(pasted->size() == long_text.size());
    CHECK((*pasted == long_text));  // (not printed: 25000 bytes)
  }
  const auto hub = r.hub->stats();
  CHECK(hub.to_vm == 2);
  CHECK(hub.to_vm_bytes == kShortText.size() + long_text.size());
  CHECK(hub.refused == 0);
  CHECK(hub.owner == "viewer");
  const auto desktop = r.rig.desktop->stats();
  CHECK(desktop.clipboard);
  // Counted once the hub took it (after the VM's grab).
  CHECK(test::eventually([&] { return r.rig.desktop->stats().clipboard_from_pages == 2; }, 10s));
  CHECK(desktop.messages_refused == 0);
}

TEST_CASE("The VM's copy reaches the page - before it connects and while it watches - as the same bytes",
          "[webrtc][clipboard]") {
  REQUIRE(bench::Chromium::available());
  ClipboardRig r;
  // Copied before any page: the desktop keeps it for the page's data channel when it opens.
  r.vm.copy(kShortText);
  REQUIRE(test::eventually([&] { return r.hub->stats().from_vm == 1; }, 10s));
  // A page the user let use the clipboard (headless Chromium refuses writeText otherwise).
  auto allowed = logging_page(r.rig.url());
  allowed.allow_clipboard = true;
  const auto browser = test::launch_chromium(allowed);
  INFO("Chromium log: " << browser->log_path());
  const uint64_t viewer = r.rig.wait_frames(10, 60s);
  REQUIRE(viewer);
  REQUIRE(test::eventually([&] { return r.page_got(viewer, kShortText); }, 30s));
  CHECK(r.report(viewer).wrote);

  // While it watches, a text of several pieces: 2000 × "𝄞é" (12000 bytes; the host's 8 KiB cut
  // falls inside a 4-byte character and backs off to its start).
  const std::string long_text = repeat("𝄞é", 2000);
  r.vm.copy(long_text);
  REQUIRE(test::eventually([&] { return r.page_got(viewer, long_text); }, 30s));
  CHECK(r.report(viewer).wrote);
  // Counted as sent to the watching page (the first went with the channel's opening).
  CHECK(test::eventually([&] { return r.rig.desktop->stats().clipboard_to_pages == 1; }, 10s));

  // A page without the permission gets the text all the same; whether it may write it is the browser's call.
  const auto plain = test::launch_chromium(logging_page(r.rig.url()));
  const uint64_t second = r.rig.wait_frames(1, 60s, 0, {viewer});
  REQUIRE(second);
  REQUIRE(test::eventually([&] { return r.page_got(second, long_text); }, 30s));
  WARN("navigator.clipboard.writeText in headless Chromium without the clipboard permission: "
       << (r.report(second).wrote ? "written" : "refused"));

  CHECK(r.vm.requests() == 2);
  CHECK(r.vm.grabs() == 0);  // the pages do not send back what they got
  const auto hub = r.hub->stats();
  CHECK(hub.from_vm == 2);
  CHECK(hub.from_vm_bytes == kShortText.size() + long_text.size());
  CHECK(hub.owner == "vm");
  CHECK(r.rig.desktop->stats().messages_refused == 0);
}

TEST_CASE("A page's copy past the limit is refused - counted and told - and the stream and later copies go on",
          "[webrtc][clipboard]") {
  REQUIRE(bench::Chromium::available());
  ClipboardRig r(10000);
  {
    // 20000 bytes: three pieces; the second passes the limit.
    const auto browser = test::launch_chromium(logging_page(copying_page(r.rig, "x", 20000)));
    INFO("Chromium log: " << browser->log_path());
    REQUIRE(test::eventually([&] { return r.hub->stats().refused == 1; }, 60s));
    // The page was told (client.js warns on its console with the host's reason).
    const std::string told = "clipboard: a copy of more than 10000 bytes (clipboard_max_bytes) was refused";
    CHECK(test::eventually([&] { return logged(*browser, told); }, 10s));
    const auto hub = r.hub->stats();
    INFO(hub.last_refusal);
    CHECK(hub.last_refusal.find("10000") != std::string::npos);
    CHECK(hub.to_vm == 0);
    CHECK(hub.owner.empty());
    CHECK(!r.hub->vm_paste());
    // Pictures still come.
    const uint64_t viewer = r.rig.wait_frames(1, 30s);
    REQUIRE(viewer);
    REQUIRE(r.rig.wait_frames(r.rig.frames_of(viewer).size() + 30, 30s, viewer));
    CHECK(r.vm.grabs() == 0);  // nothing reached the VM
    CHECK(r.rig.desktop->stats().messages_refused == 0);
  }
  // A copy within the limit from the next page is taken.
  const auto browser = test::launch_chromium(copying_page(r.rig, "within the limit"));
  INFO("Chromium log: " << browser->log_path());
  REQUIRE(test::eventually([&] { return r.vm.grabs() == 1; }, 60s));
  auto pasted = r.hub->vm_paste();
  REQUIRE(pasted);
  CHECK(*pasted == "within the limit");
  CHECK(r.hub->stats().refused == 1);
}

// A page whose data channel takes nothing (here its SCTP packets are lost on the way, which is
// how a page that does not read looks to the host): past 1 MiB unsent nothing more is queued for
// it (counted), its video goes on, and once the channel drains it is sent the desktop's current
// state, the VM's last copy among it.
TEST_CASE("A stalled data channel is not queued past 1 MiB - video goes on - and the page gets the VM's last copy once it drains",
          "[webrtc][clipboard]") {
  REQUIRE(bench::Chromium::available());
  ClipboardRig r;
  const auto browser = test::launch_chromium(logging_page(r.rig.url()));
  INFO("Chromium log: " << browser->log_path());
  const uint64_t viewer = r.rig.wait_frames(10, 60s);
  REQUIRE(viewer);
  const auto counters = [&] {
    for (const auto& v : r.rig.desktop->stats().per_viewer)
      if (v.id == viewer) return v.counters;
    return transport::PeerCounters{};
  };
  r.rig.desktop->stall_data_channels(true);
  // 4 MiB, in 512 pieces: more than SCTP takes in while nothing is acknowledged.
  const std::string big = repeat("0123456789abcdef", 256 * 1024);
  r.vm.copy(big);
  REQUIRE(test::eventually([&] { return counters().data_buffered_bytes > 1024 * 1024; }, 30s));
  CHECK(r.rig.desktop->stats().clipboard_to_pages == 1);
  r.vm.copy(kShortText);  // not queued behind it
  REQUIRE(test::eventually([&] { return counters().data_messages_dropped > 0; }, 30s));
  CHECK(r.rig.desktop->stats().clipboard_to_pages == 1);
  // The pictures go on meanwhile, and the channel still holds what it could not send.
  REQUIRE(r.rig.wait_frames(r.rig.frames_of(viewer).size() + 10, 30s, viewer));
  CHECK(counters().data_buffered_bytes > 1024 * 1024);
  CHECK_FALSE(r.page_got(viewer, big));

  r.rig.desktop->stall_data_channels(false);
  // SCTP sends again: the first copy arrives, then the desktop's current state with the VM's last copy.
  REQUIRE(test::eventually([&] { return r.page_got(viewer, kShortText); }, 90s));
  CHECK(counters().data_buffered_bytes <= 256 * 1024);
  CHECK(r.rig.desktop->stats().messages_refused == 0);
  CHECK(r.hub->stats().from_vm == 2);
}

TEST_CASE("A page pastes its unchanged text again after another viewer copied - the VM pastes the page's text",
          "[webrtc][clipboard]") {
  REQUIRE(bench::Chromium::available());
  ClipboardRig r;
  // The page's user presses Ctrl+V every 300 ms with the same local clipboard.
  const auto browser = test::launch_chromium(copying_page(r.rig, "the page's text") + "&copy_every=300");
  INFO("Chromium log: " << browser->log_path());
  REQUIRE(test::eventually([&] { return r.vm.grabs() >= 1; }, 60s));
  auto pasted = r.hub->vm_paste();
  REQUIRE(pasted);
  CHECK(*pasted == "the page's text");
  // Another viewer (a SPICE client, say) copies: the VM's clipboard is theirs now.
  REQUIRE(r.hub->client_copied("another viewer's text"));
  const int grabs = r.vm.grabs();
  // The page's next paste claims it back (its text did not change, but the VM's did).
  REQUIRE(test::eventually(
      [&] {
        const auto now = r.hub->vm_paste();
        return r.vm.grabs() > grabs && now && *now == "the page's text";
      },
      30s));
  CHECK(r.hub->stats().refused == 0);
}
