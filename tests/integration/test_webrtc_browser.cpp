// WebRTC with a real browser: Debian's headless Chromium opens the desktop's page, decodes the
// synthetic desktop's H.264 over webrtcbin, and reports the barcodes it reads from its canvas.
#include <catch2/catch.hpp>
#include <libsoup/soup.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <dirent.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "capture/synthetic/synthetic_source.hpp"
#include "core/log.hpp"
#include "fixtures/browser.hpp"
#include "fixtures/wait.hpp"
#include "fixtures/webrtc_rig.hpp"
#include "transport/webrtc_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

using Rig = test::WebRtcRig;
using test::strictly_increasing;

size_t open_fds() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

long rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

int http_status(const std::string& url) {
  SoupSession* session = soup_session_new();
  SoupMessage* msg = soup_message_new("GET", url.c_str());
  GBytes* body = soup_session_send_and_read(session, msg, nullptr, nullptr);
  if (body) g_bytes_unref(body);
  int status = int(soup_message_get_status(msg));
  g_object_unref(msg);
  g_object_unref(session);
  return status;
}

void streams_in_order(int32_t width, int32_t height) {
  REQUIRE(bench::Chromium::available());
  Rig rig(width, height);
  const auto browser = test::launch_chromium(rig.url());
  INFO("Chromium log: " << browser->log_path());
  REQUIRE(rig.wait_frames(60, 60s));
  auto viewers = rig.viewers_reporting();
  REQUIRE(viewers.size() == 1);
  auto frames = rig.frames_of(viewers[0]);
  CHECK(strictly_increasing(frames));
  auto stats = rig.desktop->stats();
  REQUIRE(stats.per_viewer.size() == 1);
  CHECK(stats.per_viewer[0].state == "connected");
  CHECK(stats.per_viewer[0].counters.frames_sent >= 60);
  CHECK(stats.idr_requests >= 1);  // the connect asked for one
  auto json = nlohmann::json::parse(transport::stats_json(stats));
  CHECK(json["viewers"] == 1);
  CHECK(json["per_viewer"][0]["state"] == "connected");
}

// Iterates `context` (a test's own, for its libsoup client) until `done` or `limit`.
template <typename Done>
bool pump_until(GMainContext* context, Done done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end)
    if (!g_main_context_iteration(context, FALSE)) std::this_thread::sleep_for(5ms);
  return done();
}

}  // namespace

TEST_CASE("Chromium shows the synthetic desktop over WebRTC: barcodes arrive in order at 720p") {
  streams_in_order(1280, 720);
}

TEST_CASE("Chromium shows the synthetic desktop over WebRTC: barcodes arrive in order at 1080p") {
  streams_in_order(1920, 1080);
}

TEST_CASE("Keys and pointer from the page reach the desktop's InputSink as qnums and desktop pixels") {
  REQUIRE(bench::Chromium::available());
  Rig rig(1280, 720);
  const auto browser = test::launch_chromium(rig.url() + "&selftest=input");
  INFO("Chromium log: " << browser->log_path());
  using T = core::InputEvent::Type;
  auto has_enter_up = [&] {
    for (const auto& e : rig.input.events())
      if (e.type == T::Key && e.qnum == 0x1c && !e.pressed) return true;
    return false;
  };
  REQUIRE(test::eventually(has_enter_up, 60s));
  std::vector<std::pair<uint32_t, bool>> keys;
  std::vector<core::InputEvent> moves, buttons;
  for (const auto& e : rig.input.events()) {
    if (e.type == T::Key) keys.emplace_back(e.qnum, e.pressed);
    if (e.type == T::Key && e.qnum == 0x1c && !e.pressed) break;  // the end of the page's sequence
    if (e.type == T::MoveAbsolute) moves.push_back(e);
    if (e.type == T::Button) buttons.push_back(e);
  }
  // KeyA, ArrowUp (extended: 0x80 | 0x48), Enter; each pressed then released, in order.
  std::vector<std::pair<uint32_t, bool>> expected{{0x1e, true}, {0x1e, false}, {0xc8, true},
                                                  {0xc8, false}, {0x1c, true}, {0x1c, false}};
  CHECK(keys == expected);
  REQUIRE(!moves.empty());
  // The middle of the page is the middle of the desktop.
  CHECK(std::abs(moves.back().x - 640) <= 2);
  CHECK(std::abs(moves.back().y - 360) <= 2);
  REQUIRE(buttons.size() == 4);
  CHECK(buttons[0].button == core::MouseButton::Right);
  CHECK(buttons[0].pressed);
  CHECK(buttons[1].button == core::MouseButton::Right);
  CHECK(!buttons[1].pressed);
  CHECK(buttons[2].button == core::MouseButton::WheelUp);
  CHECK(buttons[2].pressed);
  CHECK(!buttons[3].pressed);
}

TEST_CASE("A wrong or missing token gets 401/403 and no session - malformed signalling is refused and the server carries on") {
  REQUIRE(bench::Chromium::available());
  Rig rig(1280, 720, capture::Workload::WindowDrag, "right-token");
  const std::string page = rig.server->base_url() + rig.desktop->path();
  CHECK(http_status(page) == 401);
  CHECK(http_status(page + "?token=wrong") == 403);
  CHECK(http_status(page + "?token=right-token") == 200);
  CHECK(http_status(rig.server->base_url() + "/desktops/other/?token=right-token") == 404);
  {
    const auto wrong = test::launch_chromium(page + "?token=wrong-token");
    // The page itself is refused, so nothing can open a session; give it time to try.
    std::this_thread::sleep_for(3s);
    CHECK(rig.desktop->stats().viewers_total == 0);
  }

  // Malformed messages on an authorised signalling socket: refused, nothing else happens.
  GMainContext* context = g_main_context_new();
  g_main_context_push_thread_default(context);
  SoupSession* session = soup_session_new();
  std::string ws_url = "ws://127.0.0.1:" + std::to_string(rig.server->port()) + rig.desktop->path() + "ws?token=right-token";
  SoupMessage* msg = soup_message_new("GET", ws_url.c_str());
  SoupWebsocketConnection* conn = nullptr;
  soup_session_websocket_connect_async(
      session, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr,
      [](GObject* src, GAsyncResult* res, gpointer data) {
        *static_cast<SoupWebsocketConnection**>(data) = soup_session_websocket_connect_finish(SOUP_SESSION(src), res, nullptr);
      },
      &conn);
  auto pump = [&](auto done, std::chrono::milliseconds limit) { return pump_until(context, done, limit); };
  REQUIRE(pump([&] { return conn != nullptr; }, 5000ms));
  REQUIRE(test::eventually([&] { return rig.desktop->stats().viewers == 1; }, 5s));
  soup_websocket_connection_send_text(conn, "{not json");
  soup_websocket_connection_send_text(conn, R"({"type":"shutdown"})");
  soup_websocket_connection_send_text(conn, R"({"type":"sdp","data":{"type":"offer","sdp":"v=0"}})");
  soup_websocket_connection_send_text(conn, R"({"type":"ice","data":{"sdpMLineIndex":"zero"}})");
  CHECK(test::eventually([&] {
    g_main_context_iteration(context, FALSE);
    return rig.desktop->stats().messages_refused >= 4;
  }, 5s));
  CHECK(rig.desktop->stats().viewers == 1);  // refused messages end nothing
  std::string oversized(transport::kMaxSignalBytes + 1, 'x');
  soup_websocket_connection_send_text(conn, oversized.c_str());
  CHECK(pump([&] { return soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_CLOSED; }, 5000ms));
  CHECK(test::eventually([&] { return rig.desktop->stats().viewers == 0; }, 5s));
  g_object_unref(conn);
  g_object_unref(msg);
  g_object_unref(session);
  g_main_context_pop_thread_default(context);
  g_main_context_unref(context);

  // The server is fine: a real viewer still gets pictures.
  const auto browser = test::launch_chromium(page + "?token=right-token");
  CHECK(rig.wait_frames(30, 60s));
}

TEST_CASE("Past max_viewers a browser is told 'too many viewers' and closed (1008), and the viewer it would join keeps streaming") {
  REQUIRE(bench::Chromium::available());
  test::WebRtcRigOptions o;
  o.max_viewers = 1;
  o.token = "right-token";
  Rig rig(o);
  const auto browser = test::launch_chromium(rig.url());
  INFO("Chromium log: " << browser->log_path());
  const uint64_t viewer = rig.wait_frames(10, 60s);
  REQUIRE(viewer != 0);

  // A second viewer's signalling socket, as a page opens it.
  GMainContext* context = g_main_context_new();
  g_main_context_push_thread_default(context);
  SoupSession* session = soup_session_new();
  const std::string ws_url = "ws://127.0.0.1:" + std::to_string(rig.server->port()) + rig.desktop->path() + "ws?token=right-token";
  SoupMessage* msg = soup_message_new("GET", ws_url.c_str());
  struct Second {
    SoupWebsocketConnection* conn = nullptr;
    bool failed = false;
    std::vector<std::string> texts;
  } second;
  soup_session_websocket_connect_async(
      session, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr,
      [](GObject* src, GAsyncResult* res, gpointer data) {
        auto* s = static_cast<Second*>(data);
        s->conn = soup_session_websocket_connect_finish(SOUP_SESSION(src), res, nullptr);
        s->failed = s->conn == nullptr;
        if (s->conn)
          g_signal_connect(s->conn, "message", G_CALLBACK(+[](SoupWebsocketConnection*, gint, GBytes* message, gpointer d) {
                             gsize size = 0;
                             const auto* text = static_cast<const char*>(g_bytes_get_data(message, &size));
                             static_cast<Second*>(d)->texts.emplace_back(text, size);
                           }),
                           s);
      },
      &second);
  auto pump = [&](auto done, std::chrono::milliseconds limit) { return pump_until(context, done, limit); };
  REQUIRE(pump([&] { return second.conn != nullptr || second.failed; }, 5000ms));
  REQUIRE(second.conn != nullptr);
  CHECK(pump([&] { return soup_websocket_connection_get_state(second.conn) == SOUP_WEBSOCKET_STATE_CLOSED; }, 5000ms));
  CHECK(soup_websocket_connection_get_close_code(second.conn) == SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION);
  const bool told = std::any_of(second.texts.begin(), second.texts.end(),
                                [](const std::string& t) { return t.find("too many viewers (1)") != std::string::npos; });
  CHECK(told);
  g_object_unref(second.conn);
  g_object_unref(msg);
  g_object_unref(session);
  g_main_context_pop_thread_default(context);
  g_main_context_unref(context);

  const auto stats = rig.desktop->stats();
  CHECK(stats.sessions_refused == 1);
  CHECK(stats.viewers == 1);
  // The first page goes on: 30 more frames, in order.
  const size_t before = rig.frames_of(viewer).size();
  CHECK(rig.wait_frames(before + 30, 30s, viewer) == viewer);
  CHECK(strictly_increasing(rig.frames_of(viewer)));
}

TEST_CASE("Two viewers - one closes its tab and one reconnects 30 times - the other keeps streaming without fd growth") {
  REQUIRE(bench::Chromium::available());
  Rig rig(1280, 720);
  const auto steady = test::launch_chromium(rig.url());
  REQUIRE(rig.wait_frames(30, 60s));
  const uint64_t steady_id = rig.viewers_reporting().at(0);
  {
    const auto second = test::launch_chromium(rig.url());
    REQUIRE(test::eventually([&] { return rig.viewers_reporting().size() == 2; }, 60s));
    CHECK(rig.desktop->stats().viewers == 2);
  }  // the tab closes
  REQUIRE(test::eventually([&] { return rig.desktop->stats().viewers == 1; }, 30s));

  // A page that drops its connection after a few frames and connects again, 30 times.
  size_t fds_after_first = 0;
  long rss_after_first = 0;
  {
    const auto cycling = test::launch_chromium(rig.url() + "&selftest=cycles");
    REQUIRE(test::eventually([&] { return rig.desktop->stats().viewers_total >= 4; }, 60s));
    fds_after_first = open_fds();
    rss_after_first = rss_kb();
    // Bounded below ctest's 600 s: a sanitizer build on a loaded 2-core machine needed ~150 s
    // on a good day and more than 200 s in CI beside other tests.
    REQUIRE(test::eventually([&] { return rig.desktop->stats().viewers_total >= 2 + 30; }, 450s));
  }
  REQUIRE(test::eventually([&] { return rig.desktop->stats().viewers == 1; }, 30s));
  const size_t steady_before = rig.frames_of(steady_id).size();
  REQUIRE(rig.wait_frames(steady_before + 30, 30s, steady_id));
  CHECK(strictly_increasing(rig.frames_of(steady_id)));
  // Sockets of ended sessions are closed: at most a few fds of difference (a viewer may be mid-connect).
  CHECK(open_fds() <= fds_after_first + 4);
  WARN("RSS after the first cycles " << rss_after_first << " kB, after 30: " << rss_kb() << " kB");
#if defined(__SANITIZE_ADDRESS__)
  // ASan's quarantine keeps freed memory resident (256 MB by default): LeakSanitizer checks leaks here.
#else
  CHECK(rss_kb() < rss_after_first + 64 * 1024);
#endif
}

TEST_CASE("RTP packets lost on purpose: the picture recovers (NACK or IDR) without a long freeze") {
  REQUIRE(bench::Chromium::available());
  Rig rig(1280, 720);
  const auto browser = test::launch_chromium(rig.url());
  REQUIRE(rig.wait_frames(60, 60s));
  const uint64_t viewer = rig.viewers_reporting().at(0);
  auto largest_gap = [](const std::vector<transport::FrameReport::Entry>& f, size_t from, size_t to) {
    uint32_t gap = 0;
    for (size_t i = std::max<size_t>(from, 1); i < to; ++i) gap = std::max(gap, f[i].barcode - f[i - 1].barcode);
    return gap;
  };
  const size_t warm = rig.frames_of(viewer).size();
  const uint32_t baseline_gap = largest_gap(rig.frames_of(viewer), 30, warm);  // without loss, after start-up
  // No freeze: after a loss the pictures go on. Without NACK/RTX Chromium waits about 3 s
  // (90 frames at 30 fps) for an IDR; a burst recovers "at once" within 45 frames (1.5 s) beyond
  // the largest gap the same page showed without loss. Three bursts must; a sanitizer build
  // beside another Chromium test in CI once stalled 7.7 s after one burst with no loss of its
  // own to blame, so up to three more bursts are tried. Broken recovery freezes after every one.
  constexpr int kQuick = 3, kMaxBursts = 6;
  std::vector<uint32_t> burst_gaps;
  int quick = 0;
  for (int burst = 0; burst < kMaxBursts && quick < kQuick; ++burst) {
    const size_t before = rig.frames_of(viewer).size();
    rig.desktop->drop_rtp_packets(3);
    REQUIRE(rig.wait_frames(before + 30, 60s, viewer));
    burst_gaps.push_back(largest_gap(rig.frames_of(viewer), before, rig.frames_of(viewer).size()));
    if (burst_gaps.back() <= baseline_gap + 45) ++quick;
  }
  auto stats = rig.desktop->stats();
  REQUIRE(stats.per_viewer.size() == 1);
  const auto& counters = stats.per_viewer[0].counters;
  CHECK(counters.rtp_packets_dropped == 3 * burst_gaps.size());
  CHECK(strictly_increasing(rig.frames_of(viewer)));
  WARN("largest barcode gap without loss " << baseline_gap << ", after each loss of 3 packets "
                                           << fmt::format("{}", fmt::join(burst_gaps, " ")) << "; NACKs "
                                           << counters.nacks << ", PLI/FIR " << counters.keyframe_requests);
  CHECK(quick == kQuick);
}

namespace {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

// Glass-to-glass: frame captured (the synthetic source's timestamp) → presented in Chromium
// (requestVideoFrameCallback's presentationTime), matched by the barcode; one clock
// (CLOCK_REALTIME = performance.timeOrigin + t on this machine).
void measure_latency(int32_t width, int32_t height, capture::Workload workload) {
  Rig rig(width, height, workload);
  const auto browser = test::launch_chromium(rig.url());
  REQUIRE(rig.wait_frames(30, 60s));
  const uint64_t viewer = rig.viewers_reporting().at(0);
  const size_t skip = rig.frames_of(viewer).size();  // warm-up
  REQUIRE(rig.wait_frames(skip + 300, 120s, viewer));
  auto frames = rig.frames_of(viewer);
  std::vector<double> g2g, receive_to_present;
  for (size_t i = skip; i < frames.size(); ++i) {
    if (frames[i].latency_ms >= 0) g2g.push_back(frames[i].latency_ms);
    receive_to_present.push_back(frames[i].present_ms - frames[i].receive_ms);
  }
  auto stats = rig.desktop->stats();
  WARN(capture::workload_name(workload) << " " << width << "x" << height << ": glass-to-glass p50 "
                                        << percentile(g2g, 0.5) << " ms, p95 " << percentile(g2g, 0.95) << " ms, p99 "
                                        << percentile(g2g, 0.99) << " ms over " << g2g.size()
                                        << " frames; received→presented p50 " << percentile(receive_to_present, 0.5)
                                        << " ms; page fps " << stats.per_viewer.at(0).page.fps);
}

}  // namespace

TEST_CASE("benchmark: glass-to-glass latency in Chromium at 720p and 1080p", "[.benchmark]") {
  for (auto workload : {capture::Workload::Typing, capture::Workload::FullMotion}) {
    measure_latency(1280, 720, workload);
    measure_latency(1920, 1080, workload);
  }
}
