// vdt-guest: the test guest's only program, started by the initramfs' init. It draws the
// project's synthetic desktop (capture/synthetic scenes, with their frame-number barcode) into
// the VM's framebuffer at a fixed frame rate, says on its protocol serial port when each frame is
// finished, and echoes key presses as a second barcode. See guest_protocol.hpp for the contract.
// A static binary: no libraries at run time, fmt header-only.
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/kd.h>
#include <poll.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/scene.hpp"
#include "core/clock.hpp"
#include "guest_framebuffer.hpp"
#include "guest_keyboard.hpp"
#include "guest_microphone.hpp"
#include "guest_protocol.hpp"

namespace vdistream::guest {
namespace {

using capture::Workload;

// The names of capture::parse_workload (synthetic_source.cpp is not linked into this binary:
// it needs memfds and logging the guest has no use for). The host checks names before boot.
constexpr std::pair<std::string_view, Workload> kWorkloads[] = {
    {"idle", Workload::Idle},           {"typing", Workload::Typing}, {"scrolling", Workload::Scrolling},
    {"window-drag", Workload::WindowDrag}, {"video", Workload::Video},   {"fullmotion", Workload::FullMotion},
};

// A whole-surface redraw is cheaper than walking back over more skipped frames than this.
constexpr uint64_t kMaxDamageWalk = 120;

void say(const std::string& text) { std::fprintf(stderr, "vdt-guest: %s\n", text.c_str()); }

struct Options {
  Workload workload[kMaxHeads] = {Workload::WindowDrag, Workload::Typing};
  double fps = 30;
  uint64_t frames = 0;
  int heads = 1;
  double tone_hz = 0;  // vdt.tone; 0 = silent
  int tone_on_ms = 0, tone_off_ms = 0;
  bool record = false;  // vdt.record
};

template <typename Number>
std::optional<Number> parse_number(std::string_view text) {
  Number value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// Reads vdt.* from the kernel command line; an error message for anything it cannot use.
std::optional<std::string> read_options(Options& options) {
  std::ifstream in("/proc/cmdline");
  std::stringstream all;
  all << in.rdbuf();
  std::istringstream words(all.str());
  std::string word;
  while (words >> word) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos) continue;
    const std::string_view key = std::string_view(word).substr(0, eq), value = std::string_view(word).substr(eq + 1);
    if (key == kArgWorkload || key == kArgWorkload1) {
      bool known = false;
      for (const auto& [name, workload] : kWorkloads)
        if (name == value) options.workload[key == kArgWorkload ? 0 : 1] = workload, known = true;
      if (!known) return fmt::format("{}={}: unknown workload", key, value);
    } else if (key == kArgFps) {
      auto fps = parse_number<double>(value);
      if (!fps || !(*fps >= 1 && *fps <= 240)) return fmt::format("{}={}: not a frame rate 1..240", key, value);
      options.fps = *fps;
    } else if (key == kArgFrames) {
      auto frames = parse_number<uint64_t>(value);
      if (!frames) return fmt::format("{}={}: not a frame count", key, value);
      options.frames = *frames;
    } else if (key == kArgHeads) {
      auto heads = parse_number<int>(value);
      if (!heads || *heads < 1 || *heads > kMaxHeads) return fmt::format("{}={}: 1 or {} heads", key, value, kMaxHeads);
      options.heads = *heads;
    } else if (key == kArgTone) {
      const size_t c1 = value.find(','), c2 = c1 == std::string_view::npos ? c1 : value.find(',', c1 + 1);
      if (c2 == std::string_view::npos) return fmt::format("{}={}: expected HZ,ON_MS,OFF_MS", key, value);
      auto hz = parse_number<int>(value.substr(0, c1));
      auto on = parse_number<int>(value.substr(c1 + 1, c2 - c1 - 1)), off = parse_number<int>(value.substr(c2 + 1));
      if (!hz || *hz < 20 || *hz > 8000) return fmt::format("{}={}: the frequency must be 20..8000 Hz", key, value);
      if (!on || !off || *on < 10 || *off < 10 || *on > 60000 || *off > 60000)
        return fmt::format("{}={}: on and off must be 10..60000 ms", key, value);
      options.tone_hz = *hz, options.tone_on_ms = *on, options.tone_off_ms = *off;
    } else if (key == kArgRecord) {
      if (value != "0" && value != "1") return fmt::format("{}={}: 0 or 1", key, value);
      options.record = value == "1";
    }
  }
  return std::nullopt;
}

// The protocol port: raw, so the tty neither echoes nor translates, one write() per line.
class ProtocolPort {
 public:
  bool open(const char* device, std::string& error) {
    fd_.reset(::open(device, O_WRONLY | O_NOCTTY | O_CLOEXEC));
    if (!fd_) return error = fmt::format("cannot open {}: {}", device, std::strerror(errno)), false;
    termios tio{};
    if (tcgetattr(fd_.get(), &tio) == 0) {
      cfmakeraw(&tio);
      cfsetispeed(&tio, B115200);
      cfsetospeed(&tio, B115200);
      tcsetattr(fd_.get(), TCSANOW, &tio);
    }
    return true;
  }
  void line(const std::string& text) {
    if (!fd_) return;
    const std::string out = text + "\n";
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = write(fd_.get(), out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += size_t(n);
    }
  }

 private:
  core::UniqueFd fd_;
};

// The PC speaker: the PIT's channel 2 in square-wave mode, gated to the speaker through port
// 0x61 (bit 0 gates the counter, bit 1 enables the speaker). Needs I/O port access (root).
class Speaker {
 public:
  bool open(std::string& error) {
    if (ioperm(0x42, 2, 1) != 0 || ioperm(0x61, 1, 1) != 0)
      return error = fmt::format("ioperm for the PC speaker's ports: {}", std::strerror(errno)), false;
    return open_ = true;
  }
  void play(double hz) {
    const uint32_t divisor = pit_divisor(hz);
    outb(0xb6, 0x43);  // channel 2, lobyte/hibyte, mode 3 (square wave), binary
    outb(uint8_t(divisor & 0xff), 0x42);
    outb(uint8_t(divisor >> 8), 0x42);
    outb(uint8_t(inb(0x61) | 0x03), 0x61);
  }
  void silence() { outb(uint8_t(inb(0x61) & ~0x03), 0x61); }
  bool valid() const { return open_; }

 private:
  bool open_ = false;
};

// Stops fbcon from drawing its text (and cursor) over the framebuffer.
void take_console() {
  core::UniqueFd tty(::open("/dev/tty0", O_RDWR | O_CLOEXEC));
  if (!tty) return say(fmt::format("cannot open /dev/tty0 ({}): fbcon may draw over the desktop", std::strerror(errno)));
  const char hide_cursor[] = "\033[?25l";
  if (write(tty.get(), hide_cursor, sizeof(hide_cursor) - 1) < 0) say("cannot hide the console's cursor");
  // The mode stays when the descriptor closes.
  if (ioctl(tty.get(), KDSETMODE, KD_GRAPHICS) != 0)
    say(fmt::format("KDSETMODE KD_GRAPHICS failed ({}): fbcon may draw over the desktop", std::strerror(errno)));
}

struct Head {
  int index = 0;
  Framebuffer fb;
  std::unique_ptr<capture::Scene> scene;
  uint64_t shown = 0;  // the scene frame the framebuffer holds
  uint64_t drawn = 0;
};

class Guest {
 public:
  int run() {
    std::string error;
    if (!port_.open("/dev/ttyS1", error)) return fail(error);
    if (auto bad = read_options(options_)) return fail(*bad);
    for (int h = 0; h < options_.heads; ++h) {
      Head head;
      head.index = h;
      head.fb = Framebuffer::open(fmt::format("/dev/fb{}", h), error);
      if (!head.fb.valid()) return fail(error);
      head.scene = capture::Scene::create(options_.workload[h],
                                          {head.fb.width(), head.fb.height(), options_.fps, /*barcode=*/true});
      heads_.push_back(std::move(head));
    }
    if (options_.tone_hz > 0 && !speaker_.open(error)) return fail(error);
    // init has loaded the driver; the codec's probe may still be binding the device.
    if (options_.record) {
      if (!microphone_.open("/dev/snd/pcmC0D0c", 10'000, error)) return fail(error);
      say(fmt::format("recording from /dev/snd/pcmC0D0c at {} Hz, {} frames of buffer", microphone_.rate(),
                      microphone_.buffer_frames()));
    }
    keyboard_ = Keyboard::open(error);
    if (!keyboard_.valid()) say(error + "; keys are not echoed");
    take_console();
    for (const Head& head : heads_) {
      say(fmt::format("head {}: /dev/fb{} {}x{} at {} bpp, {} fps{}", head.index, head.index, head.fb.width(),
                      head.fb.height(), head.fb.bpp(), options_.fps, keyboard_.valid() ? ", keys from " + keyboard_.name() : ""));
      port_.line(fmt::format("{} {} {} {} {}", kLineReady, head.index, head.fb.width(), head.fb.height(), head.fb.bpp()));
    }
    return pace();
  }

 private:
  int fail(const std::string& why) {
    say(why);
    port_.line(fmt::format("{} {}", kLineError, why));
    return 1;
  }

  // Frame k is due at start + k / fps (absolute times, so no drift). A late wake-up draws the
  // frame that is due now and counts the ones in between as skipped: no backlog is drawn.
  int pace() {
    core::UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    if (!timer) return fail(fmt::format("timerfd_create: {}", std::strerror(errno)));
    const double period_ns = 1e9 / options_.fps;
    const int64_t start_ns = core::monotonic_now_ns();
    core::UniqueFd tone_timer(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    if (!tone_timer) return fail(fmt::format("timerfd_create: {}", std::strerror(errno)));
    if (speaker_.valid()) toggle_tone(tone_timer.get());
    draw_frame(0, /*first=*/true);
    uint64_t next = 1;
    for (;;) {
      const int64_t due_ns = start_ns + int64_t(std::llround(double(next) * period_ns));
      itimerspec when{};
      when.it_value.tv_sec = due_ns / 1'000'000'000;
      when.it_value.tv_nsec = due_ns % 1'000'000'000;
      if (timerfd_settime(timer.get(), TFD_TIMER_ABSTIME, &when, nullptr) != 0)
        return fail(fmt::format("timerfd_settime: {}", std::strerror(errno)));
      bool ticked = false;
      while (!ticked) {
        pollfd fds[4] = {{timer.get(), POLLIN, 0},
                         {keyboard_.valid() ? keyboard_.fd() : -1, POLLIN, 0},
                         {speaker_.valid() ? tone_timer.get() : -1, POLLIN, 0},
                         {microphone_.valid() ? microphone_.fd() : -1, POLLIN, 0}};
        if (poll(fds, 4, -1) < 0) {
          if (errno == EINTR) continue;
          return fail(fmt::format("poll: {}", std::strerror(errno)));
        }
        if (fds[1].revents & POLLIN) read_keys();
        if (fds[3].revents & (POLLIN | POLLERR)) listen();
        if (fds[2].revents & POLLIN) {
          uint64_t expirations = 0;
          if (read(tone_timer.get(), &expirations, sizeof(expirations)) == sizeof(expirations)) toggle_tone(tone_timer.get());
        }
        if (fds[0].revents & POLLIN) {
          uint64_t expirations = 0;
          ticked = read(timer.get(), &expirations, sizeof(expirations)) == sizeof(expirations);
        }
      }
      const auto due = uint64_t(double(core::monotonic_now_ns() - start_ns) / period_ns);
      const uint64_t frame = std::max(next, due);
      skipped_ += frame - next;
      draw_frame(frame, /*first=*/false);
      next = frame + 1;
    }
  }

  // Starts or stops the tone, says so on the port, and sets the timer for the next change.
  void toggle_tone(int timer) {
    tone_on_ = !tone_on_;
    if (tone_on_) {
      ++tone_count_;
      speaker_.play(options_.tone_hz);
      port_.line(fmt::format("{} {:.2f} {}", kLineTone, pit_tone_hz(options_.tone_hz), tone_count_));
    } else {
      speaker_.silence();
      port_.line(fmt::format("{} 0 {}", kLineTone, tone_count_));
    }
    const int ms = tone_on_ ? options_.tone_on_ms : options_.tone_off_ms;
    itimerspec when{};
    when.it_value.tv_sec = ms / 1000;
    when.it_value.tv_nsec = long(ms % 1000) * 1'000'000;
    timerfd_settime(timer, 0, &when, nullptr);
  }

  void listen() {
    std::string error;
    for (const Heard& heard : microphone_.read(error))
      port_.line(fmt::format("{} {:.2f} {} {}", kLineMicrophone, heard.hz, heard.peak, ++heard_count_));
    if (microphone_.overruns() != overruns_said_)
      say(fmt::format("capture overruns: {} (the guest read too late)", overruns_said_ = microphone_.overruns()));
    if (!error.empty()) {  // not one it can go on after (poll would report it again and again)
      say(error + "; recording stops");
      microphone_.close();
    }
  }

  void read_keys() {
    for (uint16_t code : keyboard_.read_presses()) {
      ++key_count_;
      key_echo_ = key_echo_value(key_count_, code);
      echo_dirty_ = true;
      port_.line(fmt::format("{} {} {}", kLineKey, code, key_count_));
    }
  }

  void draw_frame(uint64_t frame, bool first) {
    // With vdt.frames the scenes stop at their last frame; key echoes still show.
    const uint64_t sequence = options_.frames ? std::min(frame, options_.frames - 1) : frame;
    for (Head& head : heads_) {
      const capture::Scene& scene = *head.scene;
      core::DamageRegion damage;
      if (first || sequence - head.shown > kMaxDamageWalk) {
        damage = core::DamageRegion::full(scene.width(), scene.height());
      } else {
        for (uint64_t s = head.shown + 1; s <= sequence; ++s) damage.add(scene.damage(s));
      }
      const bool echo = head.index == 0 && (echo_dirty_ || !damage.intersected(core::DamageRegion(kKeyEchoStrip)).empty());
      if (damage.empty() && !echo) continue;
      // Everything is drawn in guest RAM first, then copied into video memory in one burst,
      // the barcodes last: a picture whose frame barcode says N holds all of frame N, even when
      // QEMU reads the framebuffer while the guest is still copying.
      const core::Rect codes = codes_area(head.fb);
      core::DamageRegion body = damage.intersected(outside(codes, head.fb)), top = damage.intersected(core::DamageRegion(codes));
      uint8_t* pixels = head.fb.draw_pixels();
      const uint32_t pitch = head.fb.draw_pitch();
      scene.draw(sequence, body, pixels, pitch);
      scene.draw(sequence, top, pixels, pitch);
      if (echo) {
        capture::Barcode::stamp_xrgb(pixels + size_t(kKeyEchoStrip.y) * pitch, pitch, kKeyEchoStrip.width,
                                     kKeyEchoStrip.height, key_echo_);
        top.add(kKeyEchoStrip);
        echo_dirty_ = false;
      }
      head.fb.present(body);
      head.fb.present(top);
      head.shown = sequence;
      ++head.drawn;
      port_.line(fmt::format("{} {} {} {} {}", kLineFrame, head.index, scene.barcode_value(sequence), head.drawn, skipped_));
    }
  }

  // The frame barcode and, below it, the key-echo strip.
  static core::Rect codes_area(const Framebuffer& fb) {
    return capture::Barcode::area(fb.width(), fb.height()).united_bounds(kKeyEchoStrip).intersected({0, 0, fb.width(), fb.height()});
  }
  // The rest of the surface, as two rectangles: right of `codes` and below it.
  static core::DamageRegion outside(const core::Rect& codes, const Framebuffer& fb) {
    core::DamageRegion rest({codes.right(), 0, fb.width() - codes.right(), codes.bottom()});
    rest.add({0, codes.bottom(), fb.width(), fb.height() - codes.bottom()});
    return rest;
  }

  Options options_;
  ProtocolPort port_;
  Keyboard keyboard_;
  Speaker speaker_;
  GuestMicrophone microphone_;
  uint32_t heard_count_ = 0;
  uint32_t overruns_said_ = 0;
  bool tone_on_ = false;
  uint32_t tone_count_ = 0;
  std::vector<Head> heads_;
  uint64_t skipped_ = 0;
  uint32_t key_count_ = 0;
  uint32_t key_echo_ = 0;
  bool echo_dirty_ = true;
};

}  // namespace
}  // namespace vdistream::guest

int main() {
  vdistream::guest::Guest guest;
  return guest.run();
}
