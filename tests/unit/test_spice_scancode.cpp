// SPICE keyboards speak PC AT set-1 scancode bytes; QEMU's InputSink wants qnums.
#include <catch2/catch.hpp>

#include <vector>

#include "spice/scancode.hpp"

using vdistream::spice::KeyStroke;
using vdistream::spice::ScancodeDecoder;

namespace {

std::vector<KeyStroke> decode(std::initializer_list<uint8_t> bytes) {
  ScancodeDecoder decoder;
  std::vector<KeyStroke> out;
  for (uint8_t b : bytes)
    if (auto k = decoder.feed(b)) out.push_back(*k);
  return out;
}

}  // namespace

TEST_CASE("a plain set-1 scancode is its own qnum, bit 7 marks the release") {
  CHECK(decode({0x1E, 0x9E}) == std::vector<KeyStroke>{{0x1E, true}, {0x1E, false}});  // A
  CHECK(decode({0x01, 0x81}) == std::vector<KeyStroke>{{0x01, true}, {0x01, false}});  // Escape
}

TEST_CASE("an 0xE0-prefixed scancode becomes 0x80 | code") {
  // Keypad Enter, Right Ctrl, Up arrow, Left GUI.
  CHECK(decode({0xE0, 0x1C, 0xE0, 0x9C}) == std::vector<KeyStroke>{{0x9C, true}, {0x9C, false}});
  CHECK(decode({0xE0, 0x1D}) == std::vector<KeyStroke>{{0x9D, true}});
  CHECK(decode({0xE0, 0x48, 0xE0, 0xC8}) == std::vector<KeyStroke>{{0xC8, true}, {0xC8, false}});
  CHECK(decode({0xE0, 0x5B}) == std::vector<KeyStroke>{{0xDB, true}});
}

TEST_CASE("the prefix applies to the next byte only") {
  CHECK(decode({0xE0, 0x1C, 0x1C}) == std::vector<KeyStroke>{{0x9C, true}, {0x1C, true}});
}

TEST_CASE("the six-byte Pause sequence is one press and one release of qnum 0xC6") {
  CHECK(decode({0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5}) == std::vector<KeyStroke>{{0xC6, true}, {0xC6, false}});
  // And the decoder is back to normal afterwards.
  CHECK(decode({0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5, 0x1E}).back() == KeyStroke{0x1E, true});
}

TEST_CASE("an extended code no PC key sends (the fake shift around PrintScreen) is dropped") {
  CHECK(decode({0xE0, 0x2A, 0xE0, 0x37}) == std::vector<KeyStroke>{{0xB7, true}});  // PrintScreen only
}
