// The test guest's keyboard: the evdev node of QEMU's PS/2 keyboard ("AT Translated Set 2
// keyboard"), read without blocking so key presses never hold up the frame pacing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"

namespace vdistream::guest {

class Keyboard {
 public:
  // Finds the keyboard among /dev/input/event*; on failure returns an invalid one and sets `error`.
  static Keyboard open(std::string& error);

  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }  // for poll()
  const std::string& name() const { return name_; }

  // Linux key codes of the presses (not repeats, not releases) waiting now; never blocks.
  std::vector<uint16_t> read_presses();

 private:
  core::UniqueFd fd_;
  std::string name_;
};

}  // namespace vdistream::guest
