// remote-viewer (virt-viewer, spice-gtk's widget) under Xvfb shows a desktop served by
// SpiceDesktop: screenshots of the X screen are searched for the latest frame's barcode.
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "encode/pipeline.hpp"
#include "fixtures/process.hpp"
#include "fixtures/stream_desktop.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream;

namespace {

constexpr int kScreenWidth = 1280, kScreenHeight = 1024;

// The barcode anywhere near the top-left of the screen (remote-viewer's menu and tool bars
// push the desktop down).
std::optional<uint32_t> find_barcode(const std::vector<uint8_t>& bgra) {
  const uint32_t pitch = kScreenWidth * 4;
  if (bgra.size() < size_t(pitch) * kScreenHeight) return std::nullopt;
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 64; ++x)
      if (auto v = capture::Barcode::read_xrgb(bgra.data() + size_t(y) * pitch + size_t(x) * 4, pitch,
                                               kScreenWidth - x, kScreenHeight - y))
        return v;
  return std::nullopt;
}

// Runs remote-viewer on `uri` under Xvfb, screenshotting the screen every 0.3 s, and calls
// `seen(barcode)` with each barcode found until it returns true or about 40 s pass. Saves the
// last screenshot as VDISTREAM_SCREENSHOT_DIR/<png_name> when that variable is set. `setup`:
// shell commands run before remote-viewer starts, in the same directory.
template <typename Seen>
bool watch_remote_viewer(const std::string& uri, const std::string& png_name, Seen seen, const std::string& setup = "") {
  test::TempDir dir;
  // Xvfb picks a free display itself (-displayfd): two of these tests side by side (ctest -j) must
  // not race for one, as xvfb-run -a can.
  const std::string script =
      "Xvfb -displayfd 3 -nolisten tcp -screen 0 1280x1024x24 3>display 2>xvfb.log & xvfb=$!; "
      "for i in $(seq 100); do [ -s display ] && break; sleep 0.1; done; "
      "[ -s display ] || { echo 'Xvfb did not start' >&2; cat xvfb.log >&2; kill $xvfb; exit 1; }; "
      "export DISPLAY=:$(cat display); " +
      setup + "remote-viewer '" + uri + "' & viewer=$!; "
      "for i in $(seq 100); do sleep 0.3; [ -e stop ] && break; "
      "import -window root -depth 8 bgra:shot.tmp 2>/dev/null && mv shot.tmp shot.bgra; done; "
      "import -window root shot.png; kill $viewer; wait $viewer 2>/dev/null; kill $xvfb; wait $xvfb 2>/dev/null; true";
  test::ProcessResult result;
  std::thread shell([&] { result = test::run_process({"sh", "-c", script}, std::chrono::seconds(90), dir.path()); });
  bool done = false;
  for (int attempt = 0; attempt < 200 && !done; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::ifstream in(dir.file("shot.bgra"), std::ios::binary);
    if (!in) continue;
    if (auto barcode = find_barcode(std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}))) done = seen(*barcode);
  }
  std::ofstream(dir.file("stop")).put('\n');
  shell.join();
  UNSCOPED_INFO("remote-viewer/Xvfb stderr: " << result.err);
  if (const char* keep = std::getenv("VDISTREAM_SCREENSHOT_DIR"))
    std::filesystem::copy_file(dir.file("shot.png"), std::string(keep) + "/" + png_name,
                               std::filesystem::copy_options::overwrite_existing);
  return done;
}

// Watches remote-viewer on `d` until three different barcodes have been on screen; them, in order.
std::vector<uint32_t> watch_advancing(const test::StreamDesktop& d, const std::string& png_name,
                                      const std::string& setup = "") {
  std::vector<uint32_t> seen;
  watch_remote_viewer(
      d.uri(), png_name,
      [&](uint32_t barcode) {
        if (seen.empty() || barcode != seen.back()) seen.push_back(barcode);
        return seen.size() >= 3;
      },
      setup);
  return seen;
}

}  // namespace

TEST_CASE("remote-viewer under Xvfb shows the SPICE desktop", "[spice][remote-viewer]") {
  capture::SyntheticConfig sc;
  sc.workload = capture::Workload::WindowDrag;
  sc.width = 800;
  sc.height = 600;
  auto source = capture::SyntheticSource::create(sc);
  REQUIRE(source);
  spice::SpiceConfig config;
  config.name = "remote-viewer-test";
  config.listen.port = test::free_tcp_port();
  config.ticket = spice::Ticket{spice::generate_password(), 0};
  auto desktop = spice::SpiceDesktop::create(config, nullptr);
  REQUIRE(desktop);
  uint32_t last = 0;
  for (int i = 0; i < 30; ++i) {
    auto frame = (*source)->render_next();
    REQUIRE(frame);
    REQUIRE((*desktop)->on_frame(*frame));
    last = uint32_t(frame->sequence);
  }
  const std::string uri = "spice://127.0.0.1:" + std::to_string(config.listen.port) + "?password=" +
                          config.ticket->password;
  uint32_t latest = 0;
  const bool shown = watch_remote_viewer(uri, "spice-remote-viewer.png", [&](uint32_t barcode) {
    latest = barcode;
    return barcode == last;
  });
  INFO("last frame " << last << ", last barcode on screen " << latest);
  CHECK(shown);
}

// Stream mode on X11: spice-gtk's widget hands the GStreamer pipeline its window (GstVideoOverlay,
// ximagesink from gstreamer1.0-x under Xvfb) and H.264 from our encoder is decoded by avdec_h264.
TEST_CASE("remote-viewer under Xvfb shows the SPICE desktop in stream mode, frames advancing",
          "[spice][remote-viewer][stream]") {
  test::StreamDesktop d("remote-viewer-stream", {.width = 800, .height = 600, .ticket = spice::generate_password()});
  d.feed();
  const auto seen = watch_advancing(d, "spice-remote-viewer-stream.png");
  INFO("barcodes on screen: " << seen.size());
  CHECK(seen.size() >= 3);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] > seen[i - 1]);
  CHECK(d.desktop->stream_stats().access_units_sent > 0);
}

// A client whose GStreamer has no H.264 decoder (no gstreamer1.0-libav; here: no GStreamer
// plugins at all) announces only MJPEG, which spice-gtk decodes with its built-in libjpeg
// decoder: the stream switches to the desktop's JPEGs and remote-viewer still shows the desktop.
TEST_CASE("remote-viewer without an H.264 decoder gets MJPEG in stream mode and shows the frames advancing",
          "[spice][remote-viewer][stream][mjpeg]") {
  test::StreamDesktop d("remote-viewer-mjpeg", {.width = 800, .height = 600, .ticket = spice::generate_password()});
  d.feed();
  const auto seen = watch_advancing(d, "spice-remote-viewer-mjpeg.png",
                                    "mkdir -p none; export GST_PLUGIN_SYSTEM_PATH_1_0=$PWD/none GST_PLUGIN_PATH_1_0=$PWD/none "
                                    "GST_REGISTRY_1_0=$PWD/none/registry.bin; ");
  const auto stats = d.desktop->stream_stats();
  INFO("barcodes on screen: " << seen.size() << "; JPEGs sent " << stats.jpegs_sent << ", H.264 access units sent "
                              << stats.access_units_sent << ", JPEGs made " << d.pipeline->jpeg_stats().jpegs);
  CHECK(seen.size() >= 3);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] > seen[i - 1]);
  CHECK(stats.jpegs_sent > 0);
  CHECK(stats.access_units_sent == 0);              // the client never had H.264
  CHECK(d.pipeline->stats().frames_encoded == 0);  // so the H.264 encoder rested
}
