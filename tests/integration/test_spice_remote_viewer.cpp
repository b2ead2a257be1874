// remote-viewer (virt-viewer, spice-gtk's widget) under Xvfb shows a desktop served by
// SpiceDesktop: the X screen is searched for the desktop's barcode and then polled for it
// (benchmarks/clients/remote_viewer, the client vdistream-bench measures with).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "benchmarks/clients/remote_viewer.hpp"
#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "encode/pipeline.hpp"
#include "fixtures/process.hpp"
#include "fixtures/stream_desktop.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

// Runs remote-viewer under Xvfb on the SPICE server at 127.0.0.1:`options.port`, finds the
// desktop's barcode on its screen and polls it until `done(barcodes)` (the distinct barcodes
// shown, in order) or about 40 s pass; the barcodes. Saves the screen as
// VDISTREAM_SCREENSHOT_DIR/<screenshot_name> (PPM) when that variable is set.
template <typename Done>
std::vector<uint32_t> watch_remote_viewer(const bench::RemoteViewer::Options& options, const std::string& screenshot_name,
                                          Done done) {
  auto viewer = bench::RemoteViewer::launch(options);
  INFO(viewer.error());
  REQUIRE(viewer);
  bench::X11Screen& screen = (*viewer)->screen();
  std::vector<uint32_t> seen;
  core::Status watched = (*viewer)->locate(40s, nullptr);
  if (watched) watched = screen.start_polling();
  if (watched) {
    const auto deadline = std::chrono::steady_clock::now() + 40s;
    while (!done(seen) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
      seen.clear();
      for (const auto& s : screen.barcodes()) seen.push_back(s.barcode);
    }
    screen.stop_polling();
  }
  UNSCOPED_INFO("remote-viewer: " << (watched ? std::string("barcode found") : watched.error()) << "\n"
                                  << (*viewer)->log_tail());
  if (const char* keep = std::getenv("VDISTREAM_SCREENSHOT_DIR")) (void)screen.save_screenshot(std::string(keep) + "/" + screenshot_name);
  return seen;
}

// Watches remote-viewer on `d` until three different barcodes have been on screen; them, in order.
std::vector<uint32_t> watch_advancing(const test::StreamDesktop& d, const std::string& screenshot_name,
                                      bool without_gstreamer = false) {
  bench::RemoteViewer::Options o;
  o.port = d.port;
  o.password = d.password;
  o.desktop_width = 800;
  o.desktop_height = 600;
  o.without_gstreamer = without_gstreamer;
  return watch_remote_viewer(o, screenshot_name, [](const std::vector<uint32_t>& seen) { return seen.size() >= 3; });
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
  bench::RemoteViewer::Options o;
  o.port = config.listen.port;
  o.password = config.ticket->password;
  o.desktop_width = sc.width;
  o.desktop_height = sc.height;
  const auto seen = watch_remote_viewer(o, "spice-remote-viewer.ppm", [&](const std::vector<uint32_t>& barcodes) {
    return !barcodes.empty() && barcodes.back() == last;
  });
  const uint32_t latest = seen.empty() ? 0 : seen.back();
  const bool shown = latest == last;
  INFO("last frame " << last << ", last barcode on screen " << latest);
  CHECK(shown);
}

// Stream mode on X11: spice-gtk's widget hands the GStreamer pipeline its window (GstVideoOverlay,
// ximagesink from gstreamer1.0-x under Xvfb) and H.264 from our encoder is decoded by avdec_h264.
TEST_CASE("remote-viewer under Xvfb shows the SPICE desktop in stream mode, frames advancing",
          "[spice][remote-viewer][stream]") {
  test::StreamDesktop d("remote-viewer-stream", {.width = 800, .height = 600, .ticket = spice::generate_password()});
  d.feed();
  const auto seen = watch_advancing(d, "spice-remote-viewer-stream.ppm");
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
  const auto seen = watch_advancing(d, "spice-remote-viewer-mjpeg.ppm", /*without_gstreamer=*/true);
  const auto stats = d.desktop->stream_stats();
  INFO("barcodes on screen: " << seen.size() << "; JPEGs sent " << stats.jpegs_sent << ", H.264 access units sent "
                              << stats.access_units_sent << ", JPEGs made " << d.pipeline->jpeg_stats().jpegs);
  CHECK(seen.size() >= 3);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] > seen[i - 1]);
  CHECK(stats.jpegs_sent > 0);
  CHECK(stats.access_units_sent == 0);              // the client never had H.264
  CHECK(d.pipeline->stats().frames_encoded == 0);  // so the H.264 encoder rested
}
