#include "spice/scancode.hpp"

#include "core/keymap.hpp"

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
  const uint32_t scancode = (extended_ ? 0xE000u : 0u) | byte;
  extended_ = false;
  // The shared table decides what a key is; codes no PC key sends (a keyboard's fake
  // 0xE0 0x2A shift around PrintScreen, say) are dropped.
  auto qnum = core::qnum_from_scancode(scancode);
  if (!qnum) return std::nullopt;
  return KeyStroke{*qnum, (byte & kReleaseBit) == 0};
}

}  // namespace vdistream::spice
