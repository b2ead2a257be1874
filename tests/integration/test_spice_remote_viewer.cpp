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
#include "fixtures/process.hpp"
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

}  // namespace

TEST_CASE("remote-viewer under Xvfb shows the SPICE desktop", "[spice][remote-viewer]") {
  test::TempDir dir;
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

  // The shell takes a screenshot every 0.3 s (at most 100) until the test creates "stop".
  const std::string uri = "spice://127.0.0.1:" + std::to_string(config.listen.port) + "?password=" +
                          config.ticket->password;
  const std::string script =
      "remote-viewer '" + uri + "' & viewer=$!; "
      "for i in $(seq 100); do sleep 0.3; [ -e stop ] && break; "
      "import -window root -depth 8 bgra:shot.tmp 2>/dev/null && mv shot.tmp shot.bgra; done; "
      "import -window root shot.png; kill $viewer; wait $viewer 2>/dev/null; true";
  test::ProcessResult result;
  std::thread shell([&] {
    result = test::run_process({"xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "sh", "-c", script},
                               std::chrono::seconds(90), dir.path());
  });
  std::optional<uint32_t> seen;
  for (int attempt = 0; attempt < 200 && !(seen && *seen == last); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::ifstream in(dir.file("shot.bgra"), std::ios::binary);
    if (in) seen = find_barcode(std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}));
  }
  std::ofstream(dir.file("stop")).put('\n');
  shell.join();
  INFO("remote-viewer/xvfb-run stderr: " << result.err);
  if (const char* keep = std::getenv("VDISTREAM_SCREENSHOT_DIR"))
    std::filesystem::copy_file(dir.file("shot.png"), std::string(keep) + "/spice-remote-viewer.png",
                               std::filesystem::copy_options::overwrite_existing);
  REQUIRE(seen);
  CHECK(*seen == last);
}
