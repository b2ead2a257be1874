#include "benchmarks/clients/remote_viewer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "capture/synthetic/barcode.hpp"
#include "core/clock.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::bench {

namespace {

using capture::Barcode;
using namespace std::chrono_literals;

// Where the barcode may be: the desktop's top-left, pushed right by the window's border and down
// by remote-viewer's header bar (no window manager: the window sits at +0+0).
constexpr X11Screen::Size kSearch{128 + Barcode::kWidth, 400 + Barcode::kHeight};
// Xvfb's screen beyond the desktop: room for the header bar and borders, so nothing is scaled.
constexpr int kScreenMarginX = 128, kScreenMarginY = 320;

// Xvfb writes its display number and a newline to the -displayfd descriptor once it accepts
// connections.
std::optional<int> read_display_number(int fd, std::chrono::milliseconds limit) {
  const int64_t deadline = core::monotonic_now_ns() + int64_t(limit.count()) * 1'000'000;
  std::string text;
  while (text.find('\n') == std::string::npos) {
    const int64_t left_ms = (deadline - core::monotonic_now_ns()) / 1'000'000;
    if (left_ms <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, int(left_ms));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char buf[32];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;  // Xvfb exited without a display
    text.append(buf, size_t(n));
  }
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// virt-viewer's connection file: the server's address and its password (not on the command line).
core::Status write_vv_file(const std::string& path, const RemoteViewer::Options& o) {
  const core::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return core::Error{fmt::format("cannot write {}: {}", path, std::strerror(errno))};
  const std::string address =
      o.unix_path.empty() ? fmt::format("host={}\nport={}\n", o.host, o.port) : fmt::format("unix-path={}\n", o.unix_path);
  // No password line for a server without a ticket (QEMU's -spice disable-ticketing=on).
  const std::string password = o.password.empty() ? std::string() : fmt::format("password={}\n", o.password);
  const std::string vv = fmt::format("[virt-viewer]\ntype=spice\n{}{}title=vdistream-bench\n", address, password);
  if (write(fd.get(), vv.data(), vv.size()) != ssize_t(vv.size()))
    return core::Error{fmt::format("cannot write {}: {}", path, std::strerror(errno))};
  return {};
}

}  // namespace

RemoteViewer::~RemoteViewer() = default;

core::Result<std::unique_ptr<RemoteViewer>> RemoteViewer::launch(const Options& o) {
  if (find_program("Xvfb").empty())
    return core::Error{"Xvfb is not installed (apt-get install xvfb): remote-viewer is measured in an X server of its own"};
  if (find_program("remote-viewer").empty()) return core::Error{"remote-viewer is not installed (apt-get install virt-viewer)"};
  std::unique_ptr<RemoteViewer> viewer(new RemoteViewer(o));
  if (viewer->dir_.path().empty())
    return core::Error{fmt::format("cannot create a private directory: {}", std::strerror(errno))};
  std::string display_name;
  if (core::Status s = viewer->start_xvfb(display_name); !s) return core::Error{s.error()};
  auto screen = X11Screen::open(display_name, o.poll_interval);
  if (!screen) return core::Error{fmt::format("Xvfb started, but: {}", screen.error())};
  viewer->screen_ = std::move(*screen);
  if (core::Status s = viewer->start_viewer(display_name); !s) return core::Error{s.error()};
  viewer->display_ = display_name;
  return viewer;
}

core::Status RemoteViewer::start_xvfb(std::string& display_name) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return core::Error{fmt::format("pipe2 failed: {}", std::strerror(errno))};
  core::UniqueFd display_out(fds[0]), display_in(fds[1]);
  const std::string size = fmt::format("{}x{}x24", options_.desktop_width + kScreenMarginX, options_.desktop_height + kScreenMarginY);
  auto xvfb = ChildProcess::spawn({{find_program("Xvfb"), "-displayfd", "3", "-nolisten", "tcp", "-noreset", "-screen", "0", size},
                                   environment({}, {}),
                                   dir_.file("xvfb.log"),
                                   display_in.get()});
  if (!xvfb) return core::Error{xvfb.error()};
  xvfb_ = std::move(*xvfb);
  display_in.reset();  // EOF on display_out if Xvfb exits without writing
  const auto number = read_display_number(display_out.get(), 10s);
  if (!number) {
    const std::string state = xvfb_.running() ? "no display number within 10 s" : xvfb_.exit_description();
    return core::Error{fmt::format("Xvfb did not start ({}):\n{}", state, file_tail(dir_.file("xvfb.log"), 1500))};
  }
  display_name = fmt::format(":{}", *number);
  return {};
}

core::Status RemoteViewer::start_viewer(const std::string& display_name) {
  const std::string vv_path = dir_.file("desktop.vv");
  if (core::Status s = write_vv_file(vv_path, options_); !s) return s;
  // Its settings (zoom, window size per VM) go to a throw-away directory, not to ~/.config.
  std::vector<std::string> drop = {"DISPLAY", "WAYLAND_DISPLAY", "GDK_BACKEND", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"};
  std::vector<std::string> add = {"DISPLAY=" + display_name, "GDK_BACKEND=x11", "NO_AT_BRIDGE=1",
                                  "XDG_CONFIG_HOME=" + dir_.file("config"), "XDG_CACHE_HOME=" + dir_.file("cache")};
  if (options_.without_gstreamer) {
    // An empty plugin directory and a registry of its own: GStreamer finds no decoder at all.
    const std::string none = dir_.file("no-gstreamer-plugins");
    if (mkdir(none.c_str(), 0700) != 0) return core::Error{fmt::format("cannot create {}: {}", none, std::strerror(errno))};
    for (const char* name : {"GST_PLUGIN_SYSTEM_PATH_1_0", "GST_PLUGIN_PATH_1_0", "GST_REGISTRY_1_0"}) drop.push_back(name);
    add.insert(add.end(), {"GST_PLUGIN_SYSTEM_PATH_1_0=" + none, "GST_PLUGIN_PATH_1_0=" + none,
                           "GST_REGISTRY_1_0=" + none + "/registry.bin"});
  }
  auto viewer = ChildProcess::spawn({{find_program("remote-viewer"), "--zoom=100", "--auto-resize=never", vv_path},
                                     environment(drop, add),
                                     dir_.file("remote-viewer.log")});
  if (!viewer) return core::Error{viewer.error()};
  viewer_ = std::move(*viewer);
  return {};
}

core::Status RemoteViewer::locate(std::chrono::milliseconds limit, const std::function<void()>& between_attempts) {
  X11Screen& screen = *screen_;
  const int64_t deadline = core::monotonic_now_ns() + int64_t(limit.count()) * 1'000'000;
  while (!screen.find_barcode(kSearch)) {
    if (!viewer_.running())
      return core::Error{fmt::format("remote-viewer {} before it showed the desktop:\n{}", viewer_.exit_description(), log_tail())};
    if (screen.broken()) return core::Error{"the connection to Xvfb broke:\n" + log_tail()};
    if (core::monotonic_now_ns() > deadline) {
      const X11Screen::Size size = screen.size();
      return core::Error{fmt::format("remote-viewer did not show the desktop's barcode within {:.0f} s (searched the top-left "
                                     "{}x{} of the {}x{} screen):\n{}",
                                     double(limit.count()) / 1000, std::min(size.width, kSearch.width),
                                     std::min(size.height, kSearch.height), size.width, size.height, log_tail())};
    }
    if (between_attempts) between_attempts();
    std::this_thread::sleep_for(100ms);
  }
  // remote-viewer's window: a scaled desktop would be narrower than the desktop, or the barcode
  // would not read.
  const X11Screen::Size window = screen.largest_window();
  window_size_ = fmt::format("{}x{}", window.width, window.height);
  if (window.width < options_.desktop_width || window.height < options_.desktop_height) {
    return core::Error{fmt::format("remote-viewer's window is {}, smaller than the {}x{} desktop: it would show it scaled",
                                   window_size_, options_.desktop_width, options_.desktop_height)};
  }
  return {};
}

std::string RemoteViewer::log_tail(size_t max_bytes) const {
  const std::string viewer = file_tail(dir_.file("remote-viewer.log"), max_bytes);
  const std::string xvfb = file_tail(dir_.file("xvfb.log"), max_bytes / 2);
  return fmt::format("remote-viewer: {}\nXvfb: {}", viewer.empty() ? "(no output)" : viewer, xvfb.empty() ? "(no output)" : xvfb);
}

}  // namespace vdistream::bench
