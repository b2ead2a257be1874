// PC AT set-1 scancode bytes, as spice-server hands them to a keyboard, to QEMU qnums.
#pragma once

#include <cstdint>
#include <optional>

namespace vdistream::spice {

struct KeyStroke {
  uint32_t qnum = 0;  // set-1 code; 0x80 | code for keys with the 0xE0 prefix
  bool pressed = false;
  bool operator==(const KeyStroke&) const = default;
};

// Stateful: a key arrives as one to three bytes (0xE0 prefix, code with bit 7 = release), and
// Pause as the six-byte sequence E1 1D 45 E1 9D C5 (press then release, qnum 0xC6).
class ScancodeDecoder {
 public:
  // Feeds one byte; returns the key it completes, if any (mapped by core::qnum_from_scancode).
  std::optional<KeyStroke> feed(uint8_t byte);

 private:
  bool extended_ = false;
  int pause_bytes_ = 0;  // bytes of the Pause sequence still expected
};

}  // namespace vdistream::spice
