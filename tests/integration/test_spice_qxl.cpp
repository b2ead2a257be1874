// QXL mode with a real spice-glib client (spice-gtk 0.42): authentication, pictures in order,
// late joiners, and input back to the desktop.
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <spice/enums.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <condition_variable>
#include <mutex>

#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "core/histogram.hpp"
#include "fixtures/process.hpp"
#include "fixtures/wait.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "encode/audio/microphone.hpp"
#include "encode/audio/spectrum.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;
using bench::SpiceClient;

namespace {

constexpr const char* kTicket = "test-ticket-4711";
constexpr auto kWait = 10s;

class RecordingInput : public core::InputSink {
 public:
  void send(const core::InputEvent& e) override {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    }
    cv_.notify_all();
  }
  uint32_t keyboard_leds() const override { return leds; }
  std::atomic<uint32_t> leds{0};
  // Waits for an event matching `pred` after the first `from` events; returns its index.
  template <typename Pred>
  std::optional<size_t> wait(Pred pred, size_t from = 0) {
    std::unique_lock lock(mutex_);
    std::optional<size_t> found;
    cv_.wait_for(lock, kWait, [&] {
      for (size_t i = from; i < events_.size(); ++i)
        if (pred(events_[i])) return (found = i).has_value();
      return false;
    });
    return found;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<core::InputEvent> events_;
};

// A synthetic desktop served over SPICE; frames are pushed by the test, one at a time.
struct Desktop {
  explicit Desktop(spice::SpiceConfig config = {}, int32_t width = 800, int32_t height = 600) {
    capture::SyntheticConfig sc;
    sc.workload = capture::Workload::WindowDrag;
    sc.width = width;
    sc.height = height;
    auto s = capture::SyntheticSource::create(sc);
    REQUIRE(s);
    source = std::move(*s);
    if (config.listen.unix_path.empty()) config.listen.port = port = test::free_tcp_port();
    if (!config.no_auth && !config.ticket) config.ticket = spice::Ticket{kTicket, 0};
    config.name = "spice-test";
    auto d = spice::SpiceDesktop::create(config, &input);
    REQUIRE(d);
    desktop = std::move(*d);
  }
  // Renders and serves the next frame; returns its barcode (its sequence: every window-drag
  // frame changes something) and when it was handed over.
  std::pair<uint32_t, int64_t> push() {
    auto frame = source->render_next();
    REQUIRE(frame);
    REQUIRE(!frame->damage.empty());
    const int64_t at = core::monotonic_now_ns();
    REQUIRE(desktop->on_frame(*frame));
    return {uint32_t(frame->sequence), at};
  }
  bench::SpiceClientOptions client(const std::string& password = kTicket) const {
    bench::SpiceClientOptions o;
    o.port = port;
    o.password = password;
    return o;
  }

  RecordingInput input;  // outlives the desktop
  std::unique_ptr<capture::SyntheticSource> source;
  std::unique_ptr<spice::SpiceDesktop> desktop;
  int port = 0;
};

// Does the client's picture equal the reference drawing of frame `sequence`? (X byte ignored)
bool matches_reference(const SpiceClient::Picture& p, const capture::SyntheticSource& source, uint64_t sequence) {
  const int32_t w = source.config().width, h = source.config().height;
  if (p.width != w || p.height != h) return false;
  std::vector<uint8_t> reference(size_t(w) * h * 4);
  source.render_reference(sequence, reference.data(), uint32_t(w) * 4);
  for (int32_t y = 0; y < h; ++y)
    for (int32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        if (p.pixels[size_t(y) * p.stride + size_t(x) * 4 + c] != reference[(size_t(y) * w + x) * 4 + c]) return false;
  return true;
}

// The barcode is one rectangle of a frame: the client may still be drawing the others when it
// shows. Polls the client's picture a bounded number of times.
bool eventually_matches_reference(SpiceClient& client, const capture::SyntheticSource& source, uint64_t sequence) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto picture = client.picture();
    if (picture && matches_reference(*picture, source, sequence)) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

TEST_CASE("a spice-glib client with the right ticket sees the desktop's frames in order", "[spice]") {
  Desktop d;
  d.push();
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_display(kWait));
  REQUIRE(client.wait_barcode(0, kWait));

  // One frame at a time: each must reach the client before the next is drawn, so the test
  // does not depend on timing, and the wait is the frame's latency.
  core::LatencyHistogram latency;
  uint32_t last = 0;
  for (int i = 0; i < 90; ++i) {
    auto [barcode, at] = d.push();
    REQUIRE(client.wait_barcode(barcode, kWait));
    latency.record_ns(client.barcodes().back().at_ns - at);
    last = barcode;
  }
  auto seen = client.barcodes();
  REQUIRE(seen.size() >= 2);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].barcode > seen[i - 1].barcode);
  CHECK(seen.back().barcode == last);
  CHECK(eventually_matches_reference(client, *d.source, last));  // lossless: every pixel
  WARN("QXL frame submitted -> decoded in spice-glib, 800x600 window-drag, " << latency.count() << " frames: p50 "
       << latency.percentile_ms(50) << " ms, p95 " << latency.percentile_ms(95) << " ms, max "
       << double(latency.max_ns()) / 1e6 << " ms");
  const auto stats = d.desktop->stats();
  CHECK(stats.frames == 91);
  CHECK(stats.primaries_created == 1);
}

TEST_CASE("a wrong SPICE ticket, or none, is refused", "[spice]") {
  Desktop d;
  d.push();
  {
    SpiceClient wrong(d.client("not-the-ticket"));
    CHECK(wrong.wait_outcome(kWait) == SpiceClient::Outcome::AuthFailed);
    CHECK(!wrong.wait_display(200ms));
  }
  {
    SpiceClient none(d.client(""));
    CHECK(none.wait_outcome(kWait) == SpiceClient::Outcome::AuthFailed);
  }
  // And the server still serves the right ticket afterwards.
  SpiceClient right(d.client());
  CHECK(right.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  // Settled before it goes (spice-glib warns when torn down while the mouse mode changes).
  CHECK(right.wait_display(kWait));
  CHECK(right.wait_client_mouse(kWait));
}

TEST_CASE("a SPICE client that reconnects gets the full picture of the latest frame", "[spice]") {
  Desktop d;
  d.push();
  {
    SpiceClient first(d.client());
    REQUIRE(first.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
    REQUIRE(first.wait_barcode(0, kWait));
    auto [barcode, at] = d.push();
    REQUIRE(first.wait_barcode(barcode, kWait));
  }
  // Frames drawn while nobody watches.
  uint32_t last = 0;
  for (int i = 0; i < 20; ++i) last = d.push().first;

  SpiceClient second(d.client());
  REQUIRE(second.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(second.wait_barcode(last, kWait));
  // The barcode is one corner; the whole surface must be the latest frame too.
  CHECK(eventually_matches_reference(second, *d.source, last));
}

TEST_CASE("SPICE keys, pointer and buttons reach the desktop's InputSink as qnums and absolute positions",
          "[spice]") {
  Desktop d;
  d.push();
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_display(kWait));
  REQUIRE(client.wait_inputs(kWait));
  REQUIRE(client.wait_client_mouse(kWait));  // the primary surface enables client mouse mode

  using T = core::InputEvent::Type;
  auto key = [](uint32_t qnum, bool pressed) {
    return [=](const core::InputEvent& e) { return e.type == T::Key && e.qnum == qnum && e.pressed == pressed; };
  };
  client.key_press(0x1E);  // A
  auto a_down = d.input.wait(key(0x1E, true));
  REQUIRE(a_down);
  client.key_release(0x1E);
  REQUIRE(d.input.wait(key(0x1E, false), *a_down));
  client.key_press(0x11C);  // keypad Enter: E0 1C
  auto enter = d.input.wait(key(0x9C, true), *a_down);
  REQUIRE(enter);
  client.key_release(0x11C);
  REQUIRE(d.input.wait(key(0x9C, false), *enter));
  client.key_press(0x01);  // Escape (the SeaBIOS boot menu key)
  REQUIRE(d.input.wait(key(0x01, true)));

  client.position(321, 123, 0);
  auto moved = d.input.wait([](const core::InputEvent& e) { return e.type == T::MoveAbsolute && e.x == 321 && e.y == 123; });
  REQUIRE(moved);
  client.button_press(SPICE_MOUSE_BUTTON_LEFT, SPICE_MOUSE_BUTTON_MASK_LEFT);
  auto left = d.input.wait(
      [](const core::InputEvent& e) { return e.type == T::Button && e.button == core::MouseButton::Left && e.pressed; },
      *moved);
  REQUIRE(left);
  client.button_release(SPICE_MOUSE_BUTTON_LEFT, 0);
  REQUIRE(d.input.wait(
      [](const core::InputEvent& e) { return e.type == T::Button && e.button == core::MouseButton::Left && !e.pressed; },
      *left));
  client.button_press(SPICE_MOUSE_BUTTON_RIGHT, SPICE_MOUSE_BUTTON_MASK_RIGHT);
  REQUIRE(d.input.wait(
      [](const core::InputEvent& e) { return e.type == T::Button && e.button == core::MouseButton::Right && e.pressed; },
      *left));
}

TEST_CASE("the desktop counts its connected SPICE clients, not refused ones", "[spice]") {
  Desktop d;
  d.push();
  CHECK(d.desktop->clients() == 0);
  {
    SpiceClient refused(d.client("wrong-password"));
    REQUIRE(refused.wait_outcome(kWait) == SpiceClient::Outcome::AuthFailed);
  }
  {
    SpiceClient client(d.client());
    REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
    REQUIRE(client.wait_display(kWait));
    CHECK(d.desktop->clients() == 1);
  }
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (d.desktop->clients() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(d.desktop->clients() == 0);
}

TEST_CASE("the VM's keyboard LEDs reach the SPICE client, at connect and when they change", "[spice]") {
  Desktop d;
  d.input.leds = SPICE_KEYBOARD_MODIFIER_FLAGS_NUM_LOCK;
  d.push();
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_inputs(kWait));
  CHECK(client.wait_key_modifiers(SPICE_KEYBOARD_MODIFIER_FLAGS_NUM_LOCK, kWait));
  d.input.leds = SPICE_KEYBOARD_MODIFIER_FLAGS_NUM_LOCK | SPICE_KEYBOARD_MODIFIER_FLAGS_CAPS_LOCK;
  CHECK(client.wait_key_modifiers(SPICE_KEYBOARD_MODIFIER_FLAGS_NUM_LOCK | SPICE_KEYBOARD_MODIFIER_FLAGS_CAPS_LOCK,
                                  kWait));
}

TEST_CASE("SPICE serves on a unix socket", "[spice]") {
  test::TempDir dir;
  spice::SpiceConfig config;
  config.listen.unix_path = dir.file("desktop.sock");
  Desktop d(config);
  d.push();
  bench::SpiceClientOptions o;
  o.unix_path = config.listen.unix_path;
  o.password = kTicket;
  SpiceClient client(o);
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_barcode(0, kWait));
  auto [barcode, at] = d.push();
  CHECK(client.wait_barcode(barcode, kWait));
}

TEST_CASE("a SPICE address already in use is refused with a readable error", "[spice]") {
  Desktop first;
  spice::SpiceConfig config;
  config.listen.port = first.port;
  config.ticket = spice::Ticket{kTicket, 0};
  auto second = spice::SpiceDesktop::create(config, nullptr);
  REQUIRE(!second);
  CHECK_THAT(second.error(), Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(first.port)));
}

TEST_CASE("a desktop that changes size gets a new SPICE primary surface of that size", "[spice]") {
  Desktop d;
  d.push();
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_barcode(0, kWait));

  capture::SyntheticConfig bigger;
  bigger.workload = capture::Workload::WindowDrag;
  bigger.width = 1024;
  bigger.height = 768;
  auto resized = capture::SyntheticSource::create(bigger);
  REQUIRE(resized);
  uint64_t last = 0;
  for (int i = 0; i < 4; ++i) {
    auto frame = (*resized)->render_next();
    REQUIRE(frame);
    REQUIRE(d.desktop->on_frame(*frame));
    last = frame->sequence;
  }
  REQUIRE(client.wait_barcode(uint32_t(last), kWait));
  CHECK(eventually_matches_reference(client, **resized, last));
  CHECK(d.desktop->stats().primaries_created == 2);
}

TEST_CASE("a SPICE client connects over TLS with a certificate made for the test", "[spice]") {
  test::TempDir dir;
  auto openssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    auto r = test::run_process(args, std::chrono::seconds(60), dir.path());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  };
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days",
           "1", "-subj", "/CN=vdistream test CA"});
  openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr", "-subj",
           "/CN=127.0.0.1"});
  std::ofstream(dir.file("san.cnf")) << "subjectAltName=IP:127.0.0.1\n";
  openssl({"x509", "-req", "-in", "server.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
           "-out", "server-cert.pem", "-days", "1", "-extfile", "san.cnf"});

  auto tls = spice::tls_files_in(dir.path());
  REQUIRE(tls);
  tls->port = test::free_tcp_port();
  spice::SpiceConfig config;
  config.tls = *tls;
  Desktop d(config);
  d.push();

  bench::SpiceClientOptions o;  // TLS port only: nothing travels in the clear
  o.tls_port = tls->port;
  o.ca_file = tls->ca_cert;
  o.password = kTicket;
  SpiceClient client(o);
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_barcode(0, kWait));
  auto [barcode, at] = d.push();
  CHECK(client.wait_barcode(barcode, kWait));
}

TEST_CASE("the desktop's cursor shape reaches the SPICE client, also one that joins later", "[spice]") {
  Desktop d;
  core::CursorShape arrow;
  arrow.width = 16;
  arrow.height = 24;
  arrow.hot_x = 2;
  arrow.hot_y = 3;
  arrow.argb.assign(16 * 24, 0xff20c040u);
  d.desktop->set_cursor(arrow, {100, 100, true});  // before the first frame: sent with the primary
  d.push();
  {
    SpiceClient client(d.client());
    REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
    auto cursor = client.wait_cursor(16, 24, kWait);
    REQUIRE(cursor);
    CHECK(cursor->hot_x == 2);
    CHECK(cursor->hot_y == 3);
    REQUIRE(cursor->rgba.size() == arrow.argb.size());
    // spice-glib hands over R, G, B, A bytes: our ARGB 0xff20c040 is 20 c0 40 ff in memory.
    CHECK(cursor->rgba[0] == 0xff40c020u);

    core::CursorShape big = arrow;
    big.width = big.height = 32;
    big.argb.assign(32 * 32, 0xffffffffu);
    d.desktop->set_cursor(big, {10, 10, true});
    CHECK(client.wait_cursor(32, 32, kWait));
  }
  SpiceClient later(d.client());
  REQUIRE(later.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  CHECK(later.wait_cursor(32, 32, kWait));
}

namespace {
size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}
}  // namespace

TEST_CASE("50 SPICE connect/disconnect cycles leave the server serving, without growing fds", "[spice]") {
  Desktop d;
  d.push();
  auto cycle = [&] {
    SpiceClient client(d.client());
    REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
    REQUIRE(client.wait_display(kWait));
    auto [barcode, at] = d.push();
    REQUIRE(client.wait_barcode(barcode, kWait));
  };
  cycle();  // the first client sets up spice-glib's one-time state (threads, sockets)
  const size_t fds_before = open_fds();
  for (int i = 0; i < 50; ++i) cycle();
  // A few fds may still be closing in spice-server's worker; growth per cycle would show as 50+.
  CHECK(open_fds() <= fds_before + 4);
  cycle();
}

TEST_CASE("SPICE peers that stall or vanish mid-handshake do not stop the server", "[spice]") {
  Desktop d;
  d.push();
  auto raw_connect = [&] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(uint16_t(d.port));
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    return fd;
  };
  const int silent = raw_connect();  // connects and never says or reads anything
  const int vanishing = raw_connect();
  const char partial[] = "REDQ\x02\x00";  // half a link header, then gone
  REQUIRE(write(vanishing, partial, sizeof(partial) - 1) == ssize_t(sizeof(partial) - 1));
  close(vanishing);
  for (int i = 0; i < 5; ++i) d.push();

  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  auto [barcode, at] = d.push();
  CHECK(client.wait_barcode(barcode, kWait));
  close(silent);
}

TEST_CASE("a SPICE desktop destroyed while its client is connected stops cleanly, again and again", "[spice]") {
  // spice-server 0.15.1 leaves some of a connected client's watches behind when destroyed; they
  // must not fire into the freed server while the desktop's thread finishes.
  for (int round = 0; round < 8; ++round) {
    INFO("round " << round);
    auto d = std::make_unique<Desktop>();
    d->push();
    SpiceClient client(d->client());
    REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
    REQUIRE(client.wait_display(kWait));
    for (int i = 0; i < 3; ++i) d->push();
    d.reset();  // the server goes first; the client sees the connection close
  }
}

TEST_CASE("a SPICE client's record channel is the desktop's microphone while the VM listens", "[spice]") {
  auto mic = std::make_shared<encode::MicrophoneMixer>();
  spice::SpiceConfig config;
  config.microphone = mic;
  Desktop d(config);
  d.push();
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_barcode(0, kWait));
  client.talk(440);
  // The VM does not listen: the client is not asked to record, nothing is captured.
  std::this_thread::sleep_for(300ms);
  CHECK(client.recording().starts == 0);
  CHECK(mic->stats().frames_in == 0);

  // The guest records (QEMU's SetEnabled): the client is asked, and what it sends is read (all
  // there is, every 10 ms: a reader slower than the client would lose the oldest).
  const core::AudioFormat format{48000, 2, 16, true, false, false, 4};
  mic->vm_listening(3, true);
  REQUIRE(client.wait_recording(true, kWait));
  CHECK(client.recording().rate == 48000);
  std::vector<int16_t> heard;
  REQUIRE(test::eventually(
      [&] {
        std::vector<int16_t> period(4800 * 2);
        const size_t n = mic->read(3, format, 4800, reinterpret_cast<uint8_t*>(period.data()));
        heard.insert(heard.end(), period.begin(), period.begin() + ptrdiff_t(n * 2));
        const size_t loud = size_t(std::count_if(heard.begin(), heard.end(), [](int16_t v) { return std::abs(v) > 8000; }));
        std::this_thread::sleep_for(10ms);
        return loud > 48000 / 2;  // a good half second of the tone's peaks
      },
      kWait));
  // From the first loud sample on: the client's tone.
  const auto first = std::find_if(heard.begin(), heard.end(), [](int16_t v) { return std::abs(v) > 8000; });
  const std::vector<int16_t> tone(first - (first - heard.begin()) % 2, heard.end());
  const auto spectrum = encode::analyse(tone, 2, 48000);
  CHECK(spectrum.peak_hz == Approx(440).epsilon(0.02));
  const auto stats = mic->stats();
  CHECK(stats.talker == "spice");
  WARN("frames in " << stats.frames_in << ", dropped (the reader late by over 100 ms) " << stats.frames_dropped);
  CHECK(d.desktop->record_stats().recording);
  CHECK(d.desktop->record_stats().frames > 0);

  // The guest stops recording: so does the client.
  mic->vm_listening(3, false);
  REQUIRE(client.wait_recording(false, kWait));
  CHECK_FALSE(d.desktop->record_stats().recording);
  CHECK(client.recording().stops == 1);
}

TEST_CASE("a desktop without a microphone has no record channel", "[spice]") {
  Desktop d;
  d.push();
  SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(kWait) == SpiceClient::Outcome::Opened);
  REQUIRE(client.wait_barcode(0, kWait));
  CHECK_FALSE(client.has_record_channel());
}
