#include "guest_keyboard.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/input.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace vdistream::guest {

namespace {

bool has_key(int fd, unsigned key) {
  unsigned long bits[KEY_MAX / (sizeof(unsigned long) * CHAR_BIT) + 1] = {};
  if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(bits)), bits) < 0) return false;
  const size_t per_word = sizeof(unsigned long) * CHAR_BIT;
  return (bits[key / per_word] >> (key % per_word)) & 1;
}

}  // namespace

Keyboard Keyboard::open(std::string& error) {
  std::string seen;
  for (int n = 0; n < 32; ++n) {
    const std::string path = fmt::format("/dev/input/event{}", n);
    core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) continue;
    char name[256] = {};
    if (ioctl(fd.get(), EVIOCGNAME(sizeof(name) - 1), name) < 0) continue;
    seen += fmt::format("{}{} '{}'", seen.empty() ? "" : ", ", path, name);
    // QEMU's i8042 keyboard; any device with letter keys will do when it is missing.
    if (std::strstr(name, "keyboard") || (has_key(fd.get(), KEY_A) && has_key(fd.get(), KEY_ESC))) {
      Keyboard keyboard;
      keyboard.fd_ = std::move(fd);
      keyboard.name_ = fmt::format("{} ({})", path, name);
      return keyboard;
    }
  }
  error = seen.empty() ? "no /dev/input/event* device (is evdev.ko loaded?)"
                       : fmt::format("no keyboard among {}", seen);
  return {};
}

std::vector<uint16_t> Keyboard::read_presses() {
  std::vector<uint16_t> presses;
  input_event events[64];
  for (;;) {
    const ssize_t n = read(fd_.get(), events, sizeof(events));
    if (n <= 0) break;  // EAGAIN: nothing more for now
    for (size_t i = 0; i < size_t(n) / sizeof(input_event); ++i)
      if (events[i].type == EV_KEY && events[i].value == 1) presses.push_back(events[i].code);
  }
  return presses;
}

}  // namespace vdistream::guest
