// Host and DesktopSession with synthetic desktops: sessions start, count frames, and a reload
// starts, stops and restarts exactly the desktops whose configuration changed.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <thread>

#include "fixtures/wait.hpp"
#include "service/host.hpp"

using namespace vdistream;
using namespace std::chrono_literals;
using test::eventually;

namespace {

service::ServiceConfig config_of(const std::string& toml) {
  auto p = service::parse_config(toml, "");
  INFO(p.error_text());
  REQUIRE(p.ok());
  return p.config;
}

std::string desktop(const std::string& name, const std::string& workload = "window-drag", int bitrate = 2000) {
  return "[[desktop]]\nname = \"" + name + "\"\nsource = \"synthetic:" + workload + "@320x240@30\"\nbitrate_kbps = " +
         std::to_string(bitrate) + "\n";
}

// Waits (bounded) until `done`; false when it never happened.
uint64_t captured(const service::Host& host, const std::string& name) {
  auto s = host.find(name);
  return s ? s->status().pipeline.frames_captured : 0;
}

// A sink that counts access units.
struct CountingSink final : core::EncodedSink {
  std::atomic<uint64_t> frames{0};
  void on_encoded(const core::EncodedFramePtr&) override { ++frames; }
};

}  // namespace

TEST_CASE("a host starts every configured desktop and each counts its frames", "[service][host]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  auto summary = host.apply(config_of(desktop("a") + desktop("b", "typing")));
  CHECK(summary.added == std::vector<std::string>{"a", "b"});
  REQUIRE(eventually([&] { return captured(host, "a") > 10 && captured(host, "b") > 10; }));
  auto statuses = host.statuses();
  REQUIRE(statuses.size() == 2);
  for (const auto& s : statuses) {
    INFO(s.name << ": " << s.state_reason);
    CHECK(s.state == service::SessionState::Connected);
    CHECK(s.connected);
    CHECK(s.source_connections == 1);
    CHECK_THAT(s.encoder_why, Catch::Contains("software"));
  }
  host.stop_all();
  CHECK(host.statuses().empty());
}

TEST_CASE("a reload keeps untouched desktops running and starts, stops and restarts the others", "[service][host]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  host.apply(config_of(desktop("keep") + desktop("gone") + desktop("change")));
  REQUIRE(eventually([&] { return captured(host, "keep") > 5 && captured(host, "change") > 5; }));
  auto keep = host.find("keep");
  auto change = host.find("change");
  const uint64_t before = keep->status().pipeline.frames_captured;

  auto summary = host.apply(config_of(desktop("keep") + desktop("change", "window-drag", 3000) + desktop("new")));
  CHECK(summary.kept == std::vector<std::string>{"keep"});
  CHECK(summary.removed == std::vector<std::string>{"gone"});
  CHECK(summary.restarted == std::vector<std::string>{"change"});
  CHECK(summary.added == std::vector<std::string>{"new"});
  CHECK(host.find("keep") == keep);  // the same session: never stopped
  CHECK(host.find("change") != change);
  CHECK(change->status().state == service::SessionState::Stopped);
  CHECK(host.find("gone") == nullptr);
  CHECK(keep->status().source_connections == 1);
  CHECK(eventually([&] { return captured(host, "keep") > before + 10; }));
  CHECK(eventually([&] { return captured(host, "new") > 5 && captured(host, "change") > 5; }));
  CHECK(host.find("change")->config().encode.bitrate_kbps == 3000);
}

TEST_CASE("a desktop that cannot start is failed with its reason and retried - the others run", "[service][host]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  // A recorder into a directory that does not exist: the desktop cannot start.
  host.apply(config_of(desktop("fine") + desktop("broken") + "record = \"/nonexistent/dir/out.mp4\"\n"));
  REQUIRE(eventually([&] { return host.find("broken")->status().state == service::SessionState::Failed; }));
  CHECK_THAT(host.find("broken")->status().state_reason, Catch::Contains("/nonexistent/dir/out.mp4"));
  CHECK(eventually([&] { return captured(host, "fine") > 10; }));
}

TEST_CASE("an encoded sink added to a session gets access units, and a forced keyframe is an IDR",
          "[service][host]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  host.apply(config_of(desktop("a", "typing")));
  auto session = host.find("a");
  auto sink = std::make_shared<CountingSink>();
  session->add_encoded_sink(sink);
  REQUIRE(eventually([&] { return sink->frames > 3; }));
  // Read the count before asking: the IDR can be encoded and counted before request_keyframe() returns.
  const uint64_t keyframes = session->status().pipeline.keyframes;
  REQUIRE(eventually([&] { return session->request_keyframe().ok(); }));
  CHECK(eventually([&] { return session->status().pipeline.keyframes > keyframes; }));
  CHECK(eventually([&] { return session->status().fps_out > 0 && session->status().streaming; }));
  CHECK(session->status().viewers == 1);
  auto dropped = session->disconnect_viewers();
  REQUIRE(dropped);
  CHECK(*dropped == 1);
  const uint64_t after = sink->frames;
  std::this_thread::sleep_for(300ms);
  CHECK(sink->frames <= after + 1);  // no longer fed (one access unit may have been in flight)
  CHECK(session->status().viewers == 0);
}
