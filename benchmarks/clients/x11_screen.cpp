#include "benchmarks/clients/x11_screen.hpp"

#include <fmt/format.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "capture/synthetic/barcode.hpp"
#include "core/clock.hpp"

// Xlib last: it defines Status, Bool, True, False and None as macros.
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#undef Status

namespace vdistream::bench {

namespace {

using capture::Barcode;

void sleep_until_ns(int64_t at_ns) {
  const timespec ts{time_t(at_ns / 1'000'000'000), long(at_ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
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
std::optional<std::pair<int, int>> barcode_in(const XImage& shot, int search_width) {
  const auto* data = reinterpret_cast<const uint8_t*>(shot.data);
  const auto pitch = uint32_t(shot.bytes_per_line);
  auto reads = [&](int x, int y) {
    if (x < 0 || y < 0 || x + Barcode::kWidth > shot.width || y + Barcode::kHeight > shot.height) return false;
    const uint8_t* p = data + size_t(y) * pitch + size_t(x) * 4;
    return looks_like_barcode(p, pitch) && Barcode::read_xrgb(p, pitch, shot.width - x, shot.height - y).has_value();
  };
  for (int y = 0; y + Barcode::kHeight <= shot.height; ++y)
    for (int x = 0; x < search_width; ++x) {
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

struct X11Screen::Impl {
  std::chrono::microseconds poll_interval{1000};
  std::atomic<bool> x_failed{false};  // set by Xlib's I/O error exit handler: outlives the display
  // Destroyed in reverse order: the image before the display.
  std::unique_ptr<Display, DisplayCloser> display;
  Window root = 0;
  int screen_width = 0, screen_height = 0;
  std::unique_ptr<ShmImage> area;  // the barcode's, at barcode_x_, barcode_y_

  std::thread poller;
  std::atomic<bool> stop{false};
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::vector<Seen> seen;
  // Written by the poller only, read after it was joined.
  std::vector<double> intervals_ms, grabs_ms;
  std::string poll_error;
};

X11Screen::X11Screen(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

X11Screen::~X11Screen() { stop_polling(); }

core::Result<std::unique_ptr<X11Screen>> X11Screen::open(const std::string& display_name,
                                                          std::chrono::microseconds poll_interval) {
  auto impl = std::make_unique<Impl>();
  impl->poll_interval = poll_interval;
  XSetErrorHandler(on_x_error);
  XSetIOErrorHandler(on_x_io_error);
  impl->display.reset(XOpenDisplay(display_name.c_str()));
  if (!impl->display) return core::Error{fmt::format("cannot open the X display {}", display_name)};
  Display* d = impl->display.get();
  XSetIOErrorExitHandler(d, on_x_io_error_exit, &impl->x_failed);
  if (!XShmQueryExtension(d)) return core::Error{fmt::format("the X server on {} has no MIT-SHM extension", display_name)};
  impl->root = DefaultRootWindow(d);
  impl->screen_width = DisplayWidth(d, DefaultScreen(d));
  impl->screen_height = DisplayHeight(d, DefaultScreen(d));
  return std::unique_ptr<X11Screen>(new X11Screen(std::move(impl)));
}

X11Screen::Size X11Screen::size() const { return {impl_->screen_width, impl_->screen_height}; }

bool X11Screen::broken() const { return impl_->x_failed; }

bool X11Screen::find_barcode(Size search) {
  Impl& s = *impl_;
  if (s.poller.joinable() || s.x_failed) return false;
  const int width = std::min(s.screen_width, search.width), height = std::min(s.screen_height, search.height);
  ImagePtr shot(XGetImage(s.display.get(), s.root, 0, 0, unsigned(width), unsigned(height), AllPlanes, ZPixmap));
  if (!shot || shot->bits_per_pixel != 32) return false;
  const auto at = barcode_in(*shot, std::max(0, width - Barcode::kWidth));
  if (!at) return false;
  barcode_x_ = at->first;
  barcode_y_ = at->second;
  s.area.reset();
  return true;
}

X11Screen::Size X11Screen::largest_window() const {
  Impl& s = *impl_;
  Window root_return = 0, parent = 0, *children = nullptr;
  unsigned count = 0;
  Size largest;
  if (XQueryTree(s.display.get(), s.root, &root_return, &parent, &children, &count)) {
    for (unsigned i = 0; i < count; ++i) {
      XWindowAttributes a{};
      if (XGetWindowAttributes(s.display.get(), children[i], &a) && a.map_state == IsViewable &&
          int64_t(a.width) * a.height > int64_t(largest.width) * largest.height)
        largest = {a.width, a.height};
    }
    if (children) XFree(children);
  }
  return largest;
}

core::Status X11Screen::start_polling() {
  Impl& s = *impl_;
  if (s.poller.joinable()) return {};
  if (barcode_x_ < 0) return core::Error{"no barcode was found on the screen to poll"};
  if (!s.area) {
    if (barcode_x_ + Barcode::kWidth > s.screen_width || barcode_y_ + Barcode::kHeight > s.screen_height)
      return core::Error{fmt::format("the barcode at {},{} does not fit the {}x{} screen", barcode_x_, barcode_y_,
                                     s.screen_width, s.screen_height)};
    auto area = ShmImage::create(s.display.get(), Barcode::kWidth, Barcode::kHeight);
    if (!area) return core::Error{area.error()};
    s.area = std::move(*area);
  }
  s.stop = false;
  s.poller = std::thread(&X11Screen::poll_loop, this);
  return {};
}

// One XShmGetImage of the barcode's area per period, on an absolute schedule (a late poll does
// not cause a burst). A value is new when it differs from the last one read; unreadable polls
// (a picture half drawn, compression noise) are skipped.
void X11Screen::poll_loop() {
  Impl& s = *impl_;
  const int64_t period_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(s.poll_interval).count();
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

X11Screen::PollStats X11Screen::stop_polling() {
  impl_->stop = true;
  if (impl_->poller.joinable()) impl_->poller.join();
  PollStats stats;
  stats.polls = impl_->grabs_ms.size();
  stats.interval_ms = percentiles(impl_->intervals_ms);
  stats.grab_ms = percentiles(impl_->grabs_ms);
  stats.error = impl_->poll_error;
  return stats;
}

bool X11Screen::wait_barcode(uint32_t value, std::chrono::milliseconds limit) {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, limit, [&] {
    for (const Seen& seen : impl_->seen)
      if (seen.barcode == value) return true;
    return false;
  });
}

std::vector<X11Screen::Seen> X11Screen::barcodes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->seen;
}

core::Status X11Screen::save_screenshot(const std::string& path) {
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

}  // namespace vdistream::bench
