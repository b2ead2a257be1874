// WebRTC beyond the LAN: Debian's coturn relays the desktop to a headless Chromium that has no
// route to the host. Three network namespaces (fixtures/netns.hpp): the service runs in "h" (this
// process), Chromium in "c", coturn and a TCP proxy for the page and its signalling (socat, as a
// reverse proxy would) in "r", on one address both sides reach. Nothing leaves the namespaces.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "benchmarks/child_process.hpp"
#include "benchmarks/clients/chromium.hpp"
#include "fixtures/netns.hpp"
#include "fixtures/process.hpp"
#include "fixtures/wait.hpp"
#include "fixtures/webrtc_rig.hpp"
#include "transport/webrtc_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "north-secret-0123456789";
constexpr int kTurnPort = 3478;
constexpr int kProxyPort = 8080;

// coturn in the relay namespace with coturn's REST API secret (use-auth-secret).
class Coturn {
 public:
  Coturn(const test::NatLab& lab, const test::TempDir& dir) : lab_(lab), dir_(dir) {}
  void start() {
    const std::string relay = test::NatLab::kRelayAddress;
    auto child = bench::ChildProcess::spawn(
        {{"/usr/sbin/ip", "netns", "exec", lab_.relay(), "/usr/bin/turnserver", "-n", "--listening-ip=" + relay,
          "--relay-ip=" + relay, fmt::format("--listening-port={}", kTurnPort), "--min-port=49152",
          "--max-port=49351", "--use-auth-secret", std::string("--static-auth-secret=") + kSecret,
          "--realm=vdistream.test", "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout", "--simple-log",
          "--pidfile=" + dir_.file("turnserver.pid"), "--userdb=" + dir_.file("turndb"), "--verbose"},
         bench::environment({}, {}), log_path(), -1, /*append_log=*/true});
    INFO(child.error());
    REQUIRE(child);
    process_ = std::move(*child);
    // Ready once it answers a STUN binding request over UDP from the host namespace (this
    // thread's): coturn opens its TCP listener first, and a TURN allocation sent before the UDP
    // one is up goes unanswered until the client's retransmissions give up.
    REQUIRE(wait_answering());
  }
  void kill() { process_.stop(0ms); }
  std::string log_path() const { return dir_.file("turnserver.log"); }
  std::string log() const { return bench::file_tail(log_path(), size_t(1) << 24); }

 private:
  bool wait_answering() {
    for (int i = 0; i < 100; ++i) {
      auto r = test::run_process({"/usr/bin/timeout", "0.5", "/usr/bin/turnutils_stunclient", "-p",
                                  std::to_string(kTurnPort), test::NatLab::kRelayAddress},
                                 5s);
      if (r.exit_code == 0 && r.out.find("reflexive addr") != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  const test::NatLab& lab_;
  const test::TempDir& dir_;
  bench::ChildProcess process_;
};

// The proxy for the page and its signalling on the relay's address (socat, as a reverse proxy
// would), to `port` on the host namespace's address. Media must find its own way: through the
// TURN relay.
bench::ChildProcess start_page_proxy(const test::NatLab& lab, int port) {
  auto child = bench::ChildProcess::spawn(
      {{"/usr/sbin/ip", "netns", "exec", lab.relay(), "/usr/bin/socat",
        fmt::format("TCP-LISTEN:{},bind={},fork,reuseaddr", kProxyPort, test::NatLab::kRelayAddress),
        fmt::format("TCP:{}:{}", test::NatLab::kHostAddress, port)},
       bench::environment({}, {}), "/dev/null"});
  INFO(child.error());
  REQUIRE(child);
  return std::move(*child);
}

// A synthetic desktop → x264 → WebRtcDesktop on the host namespace's address, reached by the
// browser through the page proxy.
struct TurnRig {
  test::WebRtcRig rig;
  bench::ChildProcess proxy;

  TurnRig(const test::NatLab& lab, transport::IceSettings ice, std::function<int64_t()> unix_now = {})
      : rig(rig_options(std::move(ice), std::move(unix_now))), proxy(start_page_proxy(lab, rig.server->port())) {}

  static test::WebRtcRigOptions rig_options(transport::IceSettings ice, std::function<int64_t()> unix_now) {
    test::WebRtcRigOptions o;
    o.width = 640;
    o.height = 360;
    o.workload = capture::Workload::Typing;
    o.address = test::NatLab::kHostAddress;
    o.bitrate_bps = 2'000'000;
    o.ice = std::move(ice);
    o.unix_now = std::move(unix_now);
    return o;
  }
  // The page's address as the browser sees it: through the proxy on the relay's address.
  std::string url() const { return rig.url(fmt::format("http://{}:{}", test::NatLab::kRelayAddress, kProxyPort)); }
};

transport::IceSettings relay_settings(const std::string& secret) {
  transport::IceSettings ice;
  ice.turn = {fmt::format("turn:{}:{}?transport=udp", test::NatLab::kRelayAddress, kTurnPort)};
  ice.turn_secret = secret;
  ice.turn_ttl_seconds = 3600;
  ice.relay_only = true;
  return ice;
}

std::unique_ptr<bench::Chromium> launch_in(const test::NatLab& lab, const std::string& url) {
  bench::Chromium::Options o;
  o.url = url;
  o.width = 800;
  o.height = 600;
  o.netns = lab.client();
  auto browser = bench::Chromium::launch(o);
  INFO(browser.error());
  REQUIRE(browser);
  return std::move(*browser);
}

std::string diagnostics(bench::Chromium& browser, const Coturn& coturn, TurnRig& turn) {
  return fmt::format("desktop: {}\nChromium log: {}\ncoturn log (end): {}", transport::stats_json(turn.rig.desktop->stats()),
                     browser.log_tail(), bench::file_tail(coturn.log_path(), 6000));
}

// The body of GET http://ADDRESS:PORT/PATH, from this thread's namespace ("" when nothing answers).
std::string http_get(const std::string& address, int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(uint16_t(port));
  inet_pton(AF_INET, address.c_str(), &to.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
    const std::string request = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\n\r\n", path, address);
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size())) {
      char buffer[16384];
      for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, size_t(n));
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

std::unique_ptr<test::NatLab> make_lab() {
  REQUIRE(bench::Chromium::available());
  REQUIRE(access("/usr/bin/turnserver", X_OK) == 0);  // apt-get install coturn
  REQUIRE(access("/usr/bin/socat", X_OK) == 0);
  auto lab = test::NatLab::create();
  INFO(lab.error());
  REQUIRE(lab);
  return std::move(*lab);
}

// The namespaces, with coturn answering in the relay's.
struct RelayLab {
  std::unique_ptr<test::NatLab> lab = make_lab();
  test::TempDir dir;
  Coturn coturn{*lab, dir};
  RelayLab() { coturn.start(); }
};

}  // namespace

TEST_CASE("Chromium with no route to the host plays the desktop through coturn, with time-limited credentials", "[turn]") {
  RelayLab relay;
  auto& [lab, dir, coturn] = relay;
  TurnRig turn(*lab, relay_settings(kSecret));
  auto browser = launch_in(*lab, turn.url());

  const uint64_t viewer = turn.rig.wait_frames(30, 60s);
  if (viewer == 0) FAIL("no frames through the relay\n" << diagnostics(*browser, coturn, turn));
  CHECK(test::strictly_increasing(turn.rig.frames_of(viewer)));
  const auto stats = turn.rig.desktop->stats();
  CHECK(stats.last_ice_error.find("401") == std::string::npos);
  // coturn relayed for this viewer's own REST user, "EXPIRY:default.ID".
  CHECK(coturn.log().find(fmt::format(":default.{}>", viewer)) != std::string::npos);
}

TEST_CASE("wrong or expired TURN credentials are refused: the page reports 401, nothing plays", "[turn]") {
  RelayLab relay;
  auto& [lab, dir, coturn] = relay;

  std::unique_ptr<TurnRig> turn;
  SECTION("a secret that is not coturn's") { turn = std::make_unique<TurnRig>(*lab, relay_settings("not-the-secret")); }
  SECTION("credentials that expired an hour ago (the host's clock two days behind)") {
    turn = std::make_unique<TurnRig>(*lab, relay_settings(kSecret), [] {
      return int64_t(std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count()) -
             2 * 86400;
    });
  }
  auto browser = launch_in(*lab, turn->url());
  if (!test::eventually([&] { return turn->rig.desktop->stats().last_ice_error.rfind("401", 0) == 0; }, 60s))
    FAIL("no 401 reported by the page\n" << diagnostics(*browser, coturn, *turn));
  const auto stats = turn->rig.desktop->stats();
  CHECK(stats.ice_errors >= 1);
  CHECK(turn->rig.wait_frames(1, 0ms) == 0);  // no page reported a frame
  for (const auto& v : stats.per_viewer) CHECK(v.state != "connected");
}

TEST_CASE("a TURN relay that goes away mid-stream: the page connects again through it when it is back", "[turn]") {
  RelayLab relay;
  auto& [lab, dir, coturn] = relay;
  TurnRig turn(*lab, relay_settings(kSecret));
  auto browser = launch_in(*lab, turn.url());

  const uint64_t first = turn.rig.wait_frames(30, 60s);
  if (first == 0) FAIL("no frames through the relay\n" << diagnostics(*browser, coturn, turn));
  coturn.kill();
  // The picture stops (its relay is gone): no new frame from this viewer for 2 s.
  size_t seen = turn.rig.frames_of(first).size();
  auto changed = std::chrono::steady_clock::now();
  REQUIRE(test::eventually(
      [&] {
        if (const size_t n = turn.rig.frames_of(first).size(); n != seen) {
          seen = n;
          changed = std::chrono::steady_clock::now();
        }
        return std::chrono::steady_clock::now() - changed > 2s;
      },
      30s));
  coturn.start();
  const uint64_t second = turn.rig.wait_frames(30, 90s, 0, {first});
  if (second == 0) FAIL("the page did not come back through the restarted relay\n" << diagnostics(*browser, coturn, turn));
  CHECK(second > first);
  CHECK(test::strictly_increasing(turn.rig.frames_of(second)));
}

TEST_CASE("vdistreamd with --turn and --turn-secret-file serves a browser that can reach it only through coturn", "[turn][vdistreamd]") {
  RelayLab relay;
  auto& [lab, dir, coturn] = relay;
  std::ofstream(dir.file("turn.secret")) << kSecret << "\n";
  constexpr int kHttpPort = 8443;  // the host namespace is new: nothing else listens there
  auto service = bench::ChildProcess::spawn(
      {{"/usr/sbin/ip", "netns", "exec", lab->host(), VDISTREAMD_PATH, "--source", "synthetic:typing@640x360@30", "--http",
        fmt::format("{}:{}", test::NatLab::kHostAddress, kHttpPort), "--no-auth", "--turn",
        fmt::format("turn:{}:{}", test::NatLab::kRelayAddress, kTurnPort), "--turn-secret-file", dir.file("turn.secret"),
        "--ice-policy", "relay", "--udp-ports", "50000-50099"},
       bench::environment({}, {}), dir.file("vdistreamd.log")});
  INFO(service.error());
  REQUIRE(service);
  const bench::ChildProcess proxy = start_page_proxy(*lab, kHttpPort);
  auto api = [&] {
    const std::string body = http_get(test::NatLab::kHostAddress, kHttpPort, "/api/desktops/default");
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  };
  // The desktop serves its page once its session has started (a moment after the API answers;
  // a browser opening the page before gets a 404 and does not retry).
  REQUIRE(test::eventually(
      [&] {
        const auto j = api();
        return !j.is_discarded() && j.contains("webrtc_viewers") && j["webrtc_viewers"].is_object();
      },
      60s));

  auto browser = launch_in(*lab, fmt::format("http://{}:{}/desktops/default/", test::NatLab::kRelayAddress, kProxyPort));
  // Playing: a viewer connected, its page decoding frames and reading their barcodes (the
  // synthetic desktop's glass-to-glass latency only exists for frames the page showed).
  nlohmann::json seen;
  const bool playing = test::eventually(
      [&] {
        seen = api();
        if (seen.is_discarded()) return false;
        for (const auto& v : seen["webrtc_viewers"]["per_viewer"])
          if (v["state"] == "connected" && v["page_fps"].get<double>() > 5 && v["latency_p50_ms"].get<double>() > 0)
            return true;
        return false;
      },
      60s);
  if (!playing)
    FAIL("no viewer playing through the relay\nAPI: " << seen.dump() << "\nvdistreamd: "
                                                       << bench::file_tail(dir.file("vdistreamd.log"), 4000)
                                                       << "\nChromium: " << browser->log_tail());
  const auto& ice = seen["webrtc_viewers"]["ice"];
  CHECK(ice["credentials"] == "rest");
  CHECK(ice["policy"] == "relay");
  CHECK(ice["udp_ports"] == "50000-50099");
  CHECK(seen.dump().find(kSecret) == std::string::npos);  // the secret never leaves the host
  // coturn relayed for the REST user of this desktop's viewer.
  CHECK(coturn.log().find(":default.") != std::string::npos);
}
