#include "benchmarks/x11_viewer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>

#include "benchmarks/child_process.hpp"
#include "benchmarks/private_dir.hpp"
#include "capture/synthetic/barcode.hpp"
#include "core/clock.hpp"
#include "core/unique_fd.hpp"

// Xlib last: it defines Status, Bool, True, False and None as macros.
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#undef Status

namespace vdistream::bench {

namespace {

using capture::Barcode;
using namespace std::chrono_literals;

// Where the barcode may be: the desktop's top-left, pushed right by the window's border and down
// by remote-viewer's header bar (no window manager: the window sits at +0+0).
constexpr int kSearchWidth = 128, kSearchHeight = 400;
// Xvfb's screen beyond the desktop: room for the header bar and borders, so nothing is scaled.
constexpr int kScreenMarginX = 128, kScreenMarginY = 320;

void sleep_until_ns(int64_t at_ns) {
  const timespec ts{time_t(at_ns / 1'000'000'000), long(at_ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

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

// Xlib's default handlers print and exit the process: a failed request is a value here, and an
// X server that went away stops the poller instead of the bench.
std::atomic<int> g_x_error_code{0};
int on_x_error(Display*, XErrorEvent* event) {
  g_x_error_code = event->error_code;
  return 0;
}
int on_x_io_error(Display*) { return 0; }
void on_x_io_error_exit(Display*, void* failed) { static_cast<std::atomic<bool>*>(failed)->store(true); }

struct DisplayCloser {
  void operator()(Display* d) const { XCloseDisplay(d); }
};
struct ImageDestroyer {
  void operator()(XImage* image) const { XDestroyImage(image); }
};
using ImagePtr = std::unique_ptr<XImage, ImageDestroyer>;

// A width × height 32-bit ZPixmap in a System V shared memory segment the X server copies the
// screen into (MIT-SHM): a poll costs one round trip and no pixels on the socket.
class ShmImage {
 public:
  static core::Result<std::unique_ptr<ShmImage>> create(Display* display, int width, int height) {
    std::unique_ptr<ShmImage> s(new ShmImage(display));
    const int screen = DefaultScreen(display);
    s->image_.reset(XShmCreateImage(display, DefaultVisual(display, screen), unsigned(DefaultDepth(display, screen)),
                                    ZPixmap, nullptr, &s->info_, unsigned(width), unsigned(height)));
    if (!s->image_) return core::Error{fmt::format("XShmCreateImage {}x{} failed", width, height)};
    if (s->image_->bits_per_pixel != 32)
      return core::Error{fmt::format("the X screen has {} bits per pixel; the barcode reader needs 32", s->image_->bits_per_pixel)};
    s->info_.shmid = shmget(IPC_PRIVATE, size_t(s->image_->bytes_per_line) * size_t(height), IPC_CREAT | 0600);
    if (s->info_.shmid < 0) return core::Error{fmt::format("shmget failed: {}", std::strerror(errno))};
    void* address = shmat(s->info_.shmid, nullptr, 0);
    if (address == reinterpret_cast<void*>(-1)) return core::Error{fmt::format("shmat failed: {}", std::strerror(errno))};
    s->info_.shmaddr = s->image_->data = static_cast<char*>(address);
    s->info_.readOnly = False;
    g_x_error_code = 0;
    if (!XShmAttach(display, &s->info_)) return core::Error{"XShmAttach failed"};
    XSync(display, False);
    if (g_x_error_code) return core::Error{fmt::format("the X server could not attach the shared memory (X error {})", g_x_error_code.load())};
    s->attached_ = true;
    s->remove_segment();  // gone once both sides detach, even if this process dies
    return s;
  }
  ~ShmImage() {
    if (attached_) {
      XShmDetach(display_, &info_);
      XSync(display_, False);
    }
    image_.reset();  // XShmCreateImage's images free the XImage only, not the segment
    if (info_.shmaddr) shmdt(info_.shmaddr);
    remove_segment();
  }
  ShmImage(const ShmImage&) = delete;
  ShmImage& operator=(const ShmImage&) = delete;

  bool grab(Window window, int x, int y) { return XShmGetImage(display_, window, image_.get(), x, y, AllPlanes); }
  const uint8_t* pixels() const { return reinterpret_cast<const uint8_t*>(image_->data); }
  uint32_t pitch() const { return uint32_t(image_->bytes_per_line); }
  int width() const { return image_->width; }
  int height() const { return image_->height; }

 private:
  explicit ShmImage(Display* display) : display_(display) { info_.shmid = -1; }
  void remove_segment() {
    if (info_.shmid >= 0) shmctl(info_.shmid, IPC_RMID, nullptr);
    info_.shmid = -1;
  }
  Display* display_;
  XShmSegmentInfo info_{};
  ImagePtr image_;
  bool attached_ = false;
};

// A cheap test before the full read: the white sync block, the black one and the closing white
// block, sampled at their centres.
bool looks_like_barcode(const uint8_t* p, uint32_t pitch) {
  auto luma = [&](int block) {
    const uint8_t* px = p + size_t(Barcode::kBlock / 2) * pitch + size_t(block * Barcode::kBlock + Barcode::kBlock / 2) * 4;
    return (px[2] * 77 + px[1] * 150 + px[0] * 29) >> 8;
  };
  return luma(0) > 128 && luma(1) < 128 && luma(Barcode::kBlocks - 1) > 128;
}

// The barcode's top-left in a screenshot of the screen's top-left: the middle of the offsets at
// which it reads (the reader tolerates a few pixels off; the middle is the safest to poll).
std::optional<std::pair<int, int>> find_barcode(const XImage& shot) {
  const auto* data = reinterpret_cast<const uint8_t*>(shot.data);
  const auto pitch = uint32_t(shot.bytes_per_line);
  auto reads = [&](int x, int y) {
    if (x < 0 || y < 0 || x + Barcode::kWidth > shot.width || y + Barcode::kHeight > shot.height) return false;
    const uint8_t* p = data + size_t(y) * pitch + size_t(x) * 4;
    return looks_like_barcode(p, pitch) && Barcode::read_xrgb(p, pitch, shot.width - x, shot.height - y).has_value();
  };
  for (int y = 0; y + Barcode::kHeight <= shot.height; ++y)
    for (int x = 0; x < kSearchWidth; ++x) {
      if (!reads(x, y)) continue;
      constexpr int kReach = Barcode::kBlock / 2 + 4;
      int min_x = x, max_x = x, max_y = y;
      for (int dy = 0; dy <= kReach; ++dy)
        for (int dx = -kReach; dx <= kReach; ++dx)
          if (reads(x + dx, y + dy)) {
            min_x = std::min(min_x, x + dx);
            max_x = std::max(max_x, x + dx);
            max_y = std::max(max_y, y + dy);
          }
      return std::pair{(min_x + max_x) / 2, (y + max_y) / 2};
    }
  return std::nullopt;
}

}  // namespace

struct X11Viewer::Impl {
  Options options;
  PrivateDir dir{"vdistream-bench-x11"};  // the .vv file with the password, the logs
  // Destroyed in reverse order: the poller is joined by ~X11Viewer, then the image and the
  // display go, then remote-viewer, then Xvfb.
  ChildProcess xvfb;
  ChildProcess viewer;
  std::atomic<bool> x_failed{false};  // set by Xlib's I/O error exit handler: outlives the display
  std::unique_ptr<Display, DisplayCloser> display;
  Window root = 0;
  int screen_width = 0, screen_height = 0;
  std::unique_ptr<ShmImage> area;

  std::thread poller;
  std::atomic<bool> stop{false};
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::vector<Seen> seen;
  // Written by the poller only, read after it was joined.
  std::vector<double> intervals_ms, grabs_ms;
  std::string poll_error;
};

X11Viewer::X11Viewer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

X11Viewer::~X11Viewer() { stop_polling(); }

core::Result<std::unique_ptr<X11Viewer>> X11Viewer::launch(const Options& o) {
  const std::string xvfb_path = find_program("Xvfb"), viewer_path = find_program("remote-viewer");
  if (xvfb_path.empty())
    return core::Error{"Xvfb is not installed (apt-get install xvfb): remote-viewer is measured in an X server of its own"};
  if (viewer_path.empty()) return core::Error{"remote-viewer is not installed (apt-get install virt-viewer)"};
  auto impl = std::make_unique<Impl>();
  impl->options = o;
  const PrivateDir& dir = impl->dir;
  if (dir.path().empty()) return core::Error{fmt::format("cannot create a private directory: {}", std::strerror(errno))};

  // virt-viewer's connection file: a unix socket and its password (not on the command line).
  const std::string vv_path = dir.file("desktop.vv");
  {
    const core::UniqueFd fd(open(vv_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return core::Error{fmt::format("cannot write {}: {}", vv_path, std::strerror(errno))};
    // No password line for a server without a ticket (QEMU's -spice disable-ticketing=on).
    const std::string password = o.password.empty() ? std::string() : fmt::format("password={}\n", o.password);
    const std::string vv = fmt::format("[virt-viewer]\ntype=spice\nunix-path={}\n{}title=vdistream-bench\n", o.unix_path,
                                       password);
    if (write(fd.get(), vv.data(), vv.size()) != ssize_t(vv.size()))
      return core::Error{fmt::format("cannot write {}: {}", vv_path, std::strerror(errno))};
  }

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return core::Error{fmt::format("pipe2 failed: {}", std::strerror(errno))};
  core::UniqueFd display_out(fds[0]), display_in(fds[1]);
  const std::string screen = fmt::format("{}x{}x24", o.desktop_width + kScreenMarginX, o.desktop_height + kScreenMarginY);
  auto xvfb = ChildProcess::spawn({{xvfb_path, "-displayfd", "3", "-nolisten", "tcp", "-noreset", "-screen", "0", screen},
                                   environment({}, {}),
                                   dir.file("xvfb.log"),
                                   display_in.get()});
  if (!xvfb) return core::Error{xvfb.error()};
  impl->xvfb = std::move(*xvfb);
  display_in.reset();  // EOF on display_out if Xvfb exits without writing
  const auto number = read_display_number(display_out.get(), 10s);
  if (!number) {
    const std::string state = impl->xvfb.running() ? "no display number within 10 s" : impl->xvfb.exit_description();
    return core::Error{fmt::format("Xvfb did not start ({}):\n{}", state, file_tail(dir.file("xvfb.log"), 1500))};
  }
  const std::string display_name = fmt::format(":{}", *number);

  XSetErrorHandler(on_x_error);
  XSetIOErrorHandler(on_x_io_error);
  impl->display.reset(XOpenDisplay(display_name.c_str()));
  if (!impl->display) return core::Error{fmt::format("cannot open the X display {} that Xvfb started", display_name)};
  Display* d = impl->display.get();
  XSetIOErrorExitHandler(d, on_x_io_error_exit, &impl->x_failed);
  if (!XShmQueryExtension(d)) return core::Error{fmt::format("Xvfb on {} has no MIT-SHM extension", display_name)};
  impl->root = DefaultRootWindow(d);
  impl->screen_width = DisplayWidth(d, DefaultScreen(d));
  impl->screen_height = DisplayHeight(d, DefaultScreen(d));

  // Its settings (zoom, window size per VM) go to a throw-away directory, not to ~/.config.
  std::vector<std::string> drop = {"DISPLAY", "WAYLAND_DISPLAY", "GDK_BACKEND", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"};
  std::vector<std::string> add = {"DISPLAY=" + display_name, "GDK_BACKEND=x11", "NO_AT_BRIDGE=1",
                                  "XDG_CONFIG_HOME=" + dir.file("config"), "XDG_CACHE_HOME=" + dir.file("cache")};
  if (o.without_gstreamer) {
    // An empty plugin directory and a registry of its own: GStreamer finds no decoder at all.
    const std::string none = dir.file("no-gstreamer-plugins");
    if (mkdir(none.c_str(), 0700) != 0)
      return core::Error{fmt::format("cannot create {}: {}", none, std::strerror(errno))};
    for (const char* name : {"GST_PLUGIN_SYSTEM_PATH_1_0", "GST_PLUGIN_PATH_1_0", "GST_REGISTRY_1_0"}) drop.push_back(name);
    add.insert(add.end(), {"GST_PLUGIN_SYSTEM_PATH_1_0=" + none, "GST_PLUGIN_PATH_1_0=" + none,
                           "GST_REGISTRY_1_0=" + none + "/registry.bin"});
  }
  const std::vector<std::string> env = environment(drop, add);
  auto viewer = ChildProcess::spawn({{viewer_path, "--zoom=100", "--auto-resize=never", vv_path}, env, dir.file("remote-viewer.log")});
  if (!viewer) return core::Error{viewer.error()};
  impl->viewer = std::move(*viewer);
  return std::unique_ptr<X11Viewer>(new X11Viewer(std::move(impl)));
}

core::Status X11Viewer::locate(std::chrono::milliseconds limit, const std::function<void()>& between_attempts) {
  Impl& s = *impl_;
  Display* d = s.display.get();
  const int region_width = std::min(s.screen_width, kSearchWidth + Barcode::kWidth);
  const int region_height = std::min(s.screen_height, kSearchHeight + Barcode::kHeight);
  const int64_t deadline = core::monotonic_now_ns() + int64_t(limit.count()) * 1'000'000;
  for (;;) {
    if (!s.viewer.running())
      return core::Error{fmt::format("remote-viewer {} before it showed the desktop:\n{}", s.viewer.exit_description(), log_tail())};
    if (s.x_failed) return core::Error{"the connection to Xvfb broke:\n" + log_tail()};
    ImagePtr shot(XGetImage(d, s.root, 0, 0, unsigned(region_width), unsigned(region_height), AllPlanes, ZPixmap));
    if (shot && shot->bits_per_pixel == 32) {
      if (auto at = find_barcode(*shot)) {
        barcode_x_ = at->first;
        barcode_y_ = at->second;
        break;
      }
    }
    if (core::monotonic_now_ns() > deadline) {
      return core::Error{fmt::format("remote-viewer did not show the desktop's barcode within {:.0f} s (searched the top-left "
                                     "{}x{} of the {}x{} screen):\n{}",
                                     double(limit.count()) / 1000, region_width, region_height, s.screen_width,
                                     s.screen_height, log_tail())};
    }
    if (between_attempts) between_attempts();
    std::this_thread::sleep_for(100ms);
  }

  // remote-viewer's window: the largest mapped top-level one (a scaled desktop would be narrower
  // than the desktop, or the barcode would not read).
  Window root_return = 0, parent = 0, *children = nullptr;
  unsigned count = 0;
  int window_width = 0, window_height = 0;
  if (XQueryTree(d, s.root, &root_return, &parent, &children, &count)) {
    for (unsigned i = 0; i < count; ++i) {
      XWindowAttributes a{};
      if (XGetWindowAttributes(d, children[i], &a) && a.map_state == IsViewable &&
          int64_t(a.width) * a.height > int64_t(window_width) * window_height) {
        window_width = a.width;
        window_height = a.height;
      }
    }
    if (children) XFree(children);
  }
  window_size_ = fmt::format("{}x{}", window_width, window_height);
  if (window_width < s.options.desktop_width || window_height < s.options.desktop_height) {
    return core::Error{fmt::format("remote-viewer's window is {}, smaller than the {}x{} desktop: it would show it scaled",
                                   window_size_, s.options.desktop_width, s.options.desktop_height)};
  }
  if (barcode_x_ + Barcode::kWidth > s.screen_width || barcode_y_ + Barcode::kHeight > s.screen_height)
    return core::Error{fmt::format("the barcode at {},{} does not fit the {}x{} screen", barcode_x_, barcode_y_, s.screen_width, s.screen_height)};
  auto area = ShmImage::create(d, Barcode::kWidth, Barcode::kHeight);
  if (!area) return core::Error{area.error()};
  s.area = std::move(*area);
  return {};
}

void X11Viewer::start_polling() {
  if (!impl_->area || impl_->poller.joinable()) return;
  impl_->stop = false;
  impl_->poller = std::thread(&X11Viewer::poll_loop, this);
}

// One XShmGetImage of the barcode's area per period, on an absolute schedule (a late poll does
// not cause a burst). A value is new when it differs from the last one read; unreadable polls
// (a picture half drawn, compression noise) are skipped.
void X11Viewer::poll_loop() {
  Impl& s = *impl_;
  const int64_t period_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(s.options.poll_interval).count();
  std::optional<uint32_t> last;
  int64_t next = core::monotonic_now_ns(), previous = 0;
  while (!s.stop) {
    const int64_t before = core::monotonic_now_ns();
    const bool ok = s.area->grab(s.root, barcode_x_, barcode_y_);
    const int64_t after = core::monotonic_now_ns();
    if (!ok || s.x_failed) {
      s.poll_error = s.x_failed ? "the connection to Xvfb broke" : fmt::format("XShmGetImage failed (X error {})", g_x_error_code.load());
      break;
    }
    if (previous) s.intervals_ms.push_back(double(after - previous) / 1e6);
    s.grabs_ms.push_back(double(after - before) / 1e6);
    previous = after;
    const auto value = Barcode::read_xrgb(s.area->pixels(), s.area->pitch(), s.area->width(), s.area->height());
    if (value && value != last) {
      last = value;
      {
        std::lock_guard lock(s.mutex);
        s.seen.push_back({*value, after});
      }
      s.changed.notify_all();
    }
    next = std::max(next + period_ns, after);
    sleep_until_ns(next);
  }
}

X11Viewer::PollStats X11Viewer::stop_polling() {
  impl_->stop = true;
  if (impl_->poller.joinable()) impl_->poller.join();
  PollStats stats;
  stats.polls = impl_->grabs_ms.size();
  stats.interval_ms = percentiles(impl_->intervals_ms);
  stats.grab_ms = percentiles(impl_->grabs_ms);
  stats.error = impl_->poll_error;
  return stats;
}

bool X11Viewer::wait_barcode(uint32_t value, std::chrono::milliseconds limit) {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, limit, [&] {
    for (const Seen& seen : impl_->seen)
      if (seen.barcode == value) return true;
    return false;
  });
}

std::vector<X11Viewer::Seen> X11Viewer::barcodes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->seen;
}

core::Status X11Viewer::save_screenshot(const std::string& path) {
  Impl& s = *impl_;
  if (!s.display || s.x_failed) return core::Error{"no connection to Xvfb"};
  ImagePtr shot(XGetImage(s.display.get(), s.root, 0, 0, unsigned(s.screen_width), unsigned(s.screen_height), AllPlanes, ZPixmap));
  if (!shot || shot->bits_per_pixel != 32) return core::Error{"XGetImage of the screen failed"};
  std::string ppm = fmt::format("P6\n{} {}\n255\n", shot->width, shot->height);
  ppm.reserve(ppm.size() + size_t(shot->width) * size_t(shot->height) * 3);
  for (int y = 0; y < shot->height; ++y) {
    const auto* row = reinterpret_cast<const uint8_t*>(shot->data) + size_t(y) * size_t(shot->bytes_per_line);
    for (int x = 0; x < shot->width; ++x) ppm.append({char(row[x * 4 + 2]), char(row[x * 4 + 1]), char(row[x * 4])});
  }
  std::ofstream f(path, std::ios::binary);
  f.write(ppm.data(), std::streamsize(ppm.size()));
  if (!f) return core::Error{fmt::format("cannot write {}", path)};
  return {};
}

std::string X11Viewer::log_tail(size_t max_bytes) const {
  const std::string viewer = file_tail(impl_->dir.file("remote-viewer.log"), max_bytes);
  const std::string xvfb = file_tail(impl_->dir.file("xvfb.log"), max_bytes / 2);
  return fmt::format("remote-viewer: {}\nXvfb: {}", viewer.empty() ? "(no output)" : viewer, xvfb.empty() ? "(no output)" : xvfb);
}

}  // namespace vdistream::bench
