#include "spice/scancode.hpp"

namespace vdistream::spice {

namespace {
constexpr uint8_t kPrefixExtended = 0xE0;
constexpr uint8_t kPrefixPause = 0xE1;
constexpr uint8_t kReleaseBit = 0x80;
constexpr uint32_t kQnumPause = 0xC6;
constexpr int kPauseSequenceLength = 6;
}  // namespace

std::optional<KeyStroke> ScancodeDecoder::feed(uint8_t byte) {
  if (pause_bytes_ > 0) {
    // E1 1D 45 | E1 9D C5: the first half presses Pause, the second releases it.
    --pause_bytes_;
    if (pause_bytes_ == kPauseSequenceLength / 2) return KeyStroke{kQnumPause, true};
    if (pause_bytes_ == 0) return KeyStroke{kQnumPause, false};
    return std::nullopt;
  }
  if (byte == kPrefixPause) {
    pause_bytes_ = kPauseSequenceLength - 1;
    extended_ = false;
    return std::nullopt;
  }
  if (byte == kPrefixExtended) {
    extended_ = true;
    return std::nullopt;
  }
  uint32_t code = byte & ~kReleaseBit;
  if (extended_) code |= 0x80;
  extended_ = false;
  return KeyStroke{code, (byte & kReleaseBit) == 0};
}

}  // namespace vdistream::spice
