// WebRTC beyond the LAN: Debian's coturn relays the desktop to a headless Chromium that has no
// route to the host. Three network namespaces (fixtures/netns.hpp): the service runs in "h" (this
// process), Chromium in "c", coturn and a TCP proxy for the page and its signalling (socat, as a
// reverse proxy would) in "r", on one address both sides reach. Nothing leaves the namespaces.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "benchmarks/child_process.hpp"
#include "benchmarks/clients/chromium.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "encode/pipeline.hpp"
#include "fixtures/netns.hpp"
#include "fixtures/process.hpp"
#include "transport/http_server.hpp"
#include "transport/webrtc_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "north-secret-0123456789";
constexpr int kTurnPort = 3478;
constexpr int kProxyPort = 8080;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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
  std::string log() const { return read_file(log_path()); }

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

// A synthetic desktop → x264 → WebRtcDesktop on the host namespace's address, reached by the
// browser through a TCP proxy on the relay's address (the page and its WebSocket only: media
// must find its own way, through the TURN relay).
struct TurnRig {
  std::unique_ptr<transport::HttpServer> server;
  std::unique_ptr<encode::DesktopPipeline> pipeline;
  std::unique_ptr<capture::SyntheticSource> source;
  std::shared_ptr<transport::WebRtcDesktop> desktop;
  bench::ChildProcess proxy;

  std::mutex mutex;
  std::condition_variable cv;
  std::map<uint64_t, std::vector<uint32_t>> barcodes;  // by viewer

  TurnRig(const test::NatLab& lab, transport::IceSettings ice, std::function<int64_t()> unix_now = {}) {
    transport::HttpServerConfig http;
    http.address = test::NatLab::kHostAddress;
    http.port = 0;
    auto s = transport::HttpServer::create(http);
    INFO(s.error());
    REQUIRE(s);
    server = std::move(*s);

    encode::PipelineConfig pc;
    pc.encoder.bitrate_bps = 2'000'000;
    pc.encoder_preference = {"software"};
    auto p = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
    REQUIRE(p);
    pipeline = std::move(*p);

    capture::SyntheticConfig sc;
    sc.workload = capture::Workload::Typing;
    sc.width = 640;
    sc.height = 360;
    sc.fps = 30;
    auto src = capture::SyntheticSource::create(sc);
    REQUIRE(src);
    source = std::move(*src);

    transport::WebRtcDesktopConfig wc;
    wc.token = transport::generate_token();
    wc.rate.start_bps = pc.encoder.bitrate_bps;
    wc.ice = std::move(ice);
    wc.unix_now = std::move(unix_now);
    transport::WebRtcDesktopHooks hooks;
    hooks.keyframes = pipeline.get();
    hooks.set_bitrate = [this](uint32_t bps) { pipeline->set_bitrate(bps); };
    hooks.on_frames = [this](uint64_t viewer, const transport::FrameReport& report) {
      std::lock_guard lock(mutex);
      for (const auto& f : report.frames) barcodes[viewer].push_back(f.barcode);
      cv.notify_all();
    };
    auto d = transport::WebRtcDesktop::create(*server, wc, hooks);
    INFO(d.error());
    REQUIRE(d);
    desktop = *d;
    pipeline->add_sink(desktop);
    pipeline->start();
    capture::SourceCallbacks callbacks;
    callbacks.on_frame = [this](core::Frame f) { pipeline->submit(std::move(f)); };
    REQUIRE(source->start(callbacks));

    auto child = bench::ChildProcess::spawn(
        {{"/usr/sbin/ip", "netns", "exec", lab.relay(), "/usr/bin/socat",
          fmt::format("TCP-LISTEN:{},bind={},fork,reuseaddr", kProxyPort, test::NatLab::kRelayAddress),
          fmt::format("TCP:{}:{}", test::NatLab::kHostAddress, server->port())},
         bench::environment({}, {}), "/dev/null"});
    INFO(child.error());
    REQUIRE(child);
    proxy = std::move(*child);
  }
  ~TurnRig() {
    source->stop();
    pipeline->remove_sink(desktop);
    pipeline->stop();
    desktop.reset();
    server.reset();
  }

  // The page's address as the browser sees it: through the proxy on the relay's address.
  std::string url() const {
    return desktop->url(fmt::format("http://{}:{}", test::NatLab::kRelayAddress, kProxyPort));
  }
  size_t frames_total() {
    std::lock_guard lock(mutex);
    size_t n = 0;
    for (auto& [id, v] : barcodes) n += v.size();
    return n;
  }
  // Waits (bounded) until a viewer other than those in `not_these` has shown `n` frames; its id.
  uint64_t wait_viewer_frames(size_t n, std::chrono::seconds limit, const std::set<uint64_t>& not_these = {}) {
    std::unique_lock lock(mutex);
    uint64_t found = 0;
    cv.wait_for(lock, limit, [&] {
      for (auto& [id, v] : barcodes)
        if (!not_these.count(id) && v.size() >= n) found = id;
      return found != 0;
    });
    return found;
  }
  std::vector<uint32_t> barcodes_of(uint64_t viewer) {
    std::lock_guard lock(mutex);
    return barcodes[viewer];
  }
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

bool strictly_increasing(const std::vector<uint32_t>& v) {
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] <= v[i - 1]) return false;
  return true;
}

template <typename Pred>
bool wait_until(Pred done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::string diagnostics(bench::Chromium& browser, const Coturn& coturn, TurnRig& rig) {
  const std::string log = coturn.log();
  return fmt::format("desktop: {}\nChromium log: {}\ncoturn log (end): {}", transport::stats_json(rig.desktop->stats()),
                     browser.log_tail(), log.substr(log.size() > 6000 ? log.size() - 6000 : 0));
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

}  // namespace

TEST_CASE("Chromium with no route to the host plays the desktop through coturn, with time-limited credentials", "[turn]") {
  auto lab = make_lab();
  test::TempDir dir;
  Coturn coturn(*lab, dir);
  coturn.start();
  TurnRig rig(*lab, relay_settings(kSecret));
  auto browser = launch_in(*lab, rig.url());

  const uint64_t viewer = rig.wait_viewer_frames(30, 60s);
  if (viewer == 0) FAIL("no frames through the relay\n" << diagnostics(*browser, coturn, rig));
  CHECK(strictly_increasing(rig.barcodes_of(viewer)));
  const auto stats = rig.desktop->stats();
  CHECK(stats.last_ice_error.find("401") == std::string::npos);
  // coturn relayed for this viewer's own REST user, "EXPIRY:default.ID".
  CHECK(coturn.log().find(fmt::format(":default.{}>", viewer)) != std::string::npos);
}

TEST_CASE("wrong or expired TURN credentials are refused: the page reports 401, nothing plays", "[turn]") {
  auto lab = make_lab();
  test::TempDir dir;
  Coturn coturn(*lab, dir);
  coturn.start();

  std::unique_ptr<TurnRig> rig;
  SECTION("a secret that is not coturn's") { rig = std::make_unique<TurnRig>(*lab, relay_settings("not-the-secret")); }
  SECTION("credentials that expired an hour ago (the host's clock two days behind)") {
    rig = std::make_unique<TurnRig>(*lab, relay_settings(kSecret), [] {
      return int64_t(std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count()) -
             2 * 86400;
    });
  }
  auto browser = launch_in(*lab, rig->url());
  if (!wait_until([&] { return rig->desktop->stats().last_ice_error.rfind("401", 0) == 0; }, 60s))
    FAIL("no 401 reported by the page\n" << diagnostics(*browser, coturn, *rig));
  const auto stats = rig->desktop->stats();
  CHECK(stats.ice_errors >= 1);
  CHECK(rig->frames_total() == 0);
  for (const auto& v : stats.per_viewer) CHECK(v.state != "connected");
}

TEST_CASE("a TURN relay that goes away mid-stream: the page connects again through it when it is back", "[turn]") {
  auto lab = make_lab();
  test::TempDir dir;
  Coturn coturn(*lab, dir);
  coturn.start();
  TurnRig rig(*lab, relay_settings(kSecret));
  auto browser = launch_in(*lab, rig.url());

  const uint64_t first = rig.wait_viewer_frames(30, 60s);
  if (first == 0) FAIL("no frames through the relay\n" << diagnostics(*browser, coturn, rig));
  coturn.kill();
  // The picture stops (its relay is gone): no new frame from this viewer for 2 s.
  size_t seen = rig.barcodes_of(first).size();
  auto changed = std::chrono::steady_clock::now();
  REQUIRE(wait_until(
      [&] {
        if (const size_t n = rig.barcodes_of(first).size(); n != seen) {
          seen = n;
          changed = std::chrono::steady_clock::now();
        }
        return std::chrono::steady_clock::now() - changed > 2s;
      },
      30s));
  coturn.start();
  const uint64_t second = rig.wait_viewer_frames(30, 90s, {first});
  if (second == 0) FAIL("the page did not come back through the restarted relay\n" << diagnostics(*browser, coturn, rig));
  CHECK(second > first);
  CHECK(strictly_increasing(rig.barcodes_of(second)));
}

TEST_CASE("vdistreamd with --turn and --turn-secret-file serves a browser that can reach it only through coturn", "[turn][vdistreamd]") {
  auto lab = make_lab();
  test::TempDir dir;
  Coturn coturn(*lab, dir);
  coturn.start();
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
  auto proxy = bench::ChildProcess::spawn(
      {{"/usr/sbin/ip", "netns", "exec", lab->relay(), "/usr/bin/socat",
        fmt::format("TCP-LISTEN:{},bind={},fork,reuseaddr", kProxyPort, test::NatLab::kRelayAddress),
        fmt::format("TCP:{}:{}", test::NatLab::kHostAddress, kHttpPort)},
       bench::environment({}, {}), "/dev/null"});
  INFO(proxy.error());
  REQUIRE(proxy);
  auto api = [&] {
    const std::string body = http_get(test::NatLab::kHostAddress, kHttpPort, "/api/desktops/default");
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  };
  // The desktop serves its page once its session has started (a moment after the API answers;
  // a browser opening the page before gets a 404 and does not retry).
  REQUIRE(wait_until(
      [&] {
        const auto j = api();
        return !j.is_discarded() && j.contains("webrtc_viewers") && j["webrtc_viewers"].is_object();
      },
      60s));

  auto browser = launch_in(*lab, fmt::format("http://{}:{}/desktops/default/", test::NatLab::kRelayAddress, kProxyPort));
  // Playing: a viewer connected, its page decoding frames and reading their barcodes (the
  // synthetic desktop's glass-to-glass latency only exists for frames the page showed).
  nlohmann::json seen;
  const bool playing = wait_until(
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
