// Keys from SPICE (PC AT set-1 scancodes) and browsers (KeyboardEvent.code) to QEMU qnums.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "core/keymap.hpp"

using namespace vdistream::core;

namespace {

// The 104-key US layout, plus IntlBackslash (the 105th key of ISO keyboards).
const char* const kFullLayout[] = {
    "Escape", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12", "PrintScreen", "ScrollLock",
    "Pause", "Backquote", "Digit1", "Digit2", "Digit3", "Digit4", "Digit5", "Digit6", "Digit7", "Digit8", "Digit9",
    "Digit0", "Minus", "Equal", "Backspace", "Insert", "Home", "PageUp", "NumLock", "NumpadDivide", "NumpadMultiply",
    "NumpadSubtract", "Tab", "KeyQ", "KeyW", "KeyE", "KeyR", "KeyT", "KeyY", "KeyU", "KeyI", "KeyO", "KeyP",
    "BracketLeft", "BracketRight", "Backslash", "Delete", "End", "PageDown", "Numpad7", "Numpad8", "Numpad9",
    "NumpadAdd", "CapsLock", "KeyA", "KeyS", "KeyD", "KeyF", "KeyG", "KeyH", "KeyJ", "KeyK", "KeyL", "Semicolon",
    "Quote", "Enter", "Numpad4", "Numpad5", "Numpad6", "ShiftLeft", "KeyZ", "KeyX", "KeyC", "KeyV", "KeyB", "KeyN",
    "KeyM", "Comma", "Period", "Slash", "ShiftRight", "ArrowUp", "Numpad1", "Numpad2", "Numpad3", "NumpadEnter",
    "ControlLeft", "MetaLeft", "AltLeft", "Space", "AltRight", "MetaRight", "ContextMenu", "ControlRight",
    "ArrowLeft", "ArrowDown", "ArrowRight", "Numpad0", "NumpadDecimal", "IntlBackslash"};

}  // namespace

TEST_CASE("every key of the 105-key layout has its own qnum") {
  STATIC_REQUIRE(std::size(kFullLayout) == 105);
  std::set<uint32_t> seen;
  for (const char* code : kFullLayout) {
    INFO(code);
    auto qnum = qnum_from_key_code(code);
    REQUIRE(qnum.has_value());
    CHECK(*qnum > 0);
    CHECK(*qnum < 0x100);
    CHECK(seen.insert(*qnum).second);
  }
}

TEST_CASE("browser key codes map to the qnums QEMU documents") {
  CHECK(qnum_from_key_code("Escape") == 0x01u);
  CHECK(qnum_from_key_code("KeyA") == 0x1Eu);
  CHECK(qnum_from_key_code("Enter") == 0x1Cu);
  CHECK(qnum_from_key_code("NumpadEnter") == 0x9Cu);  // E0 1C
  CHECK(qnum_from_key_code("ControlLeft") == 0x1Du);
  CHECK(qnum_from_key_code("ControlRight") == 0x9Du);  // E0 1D
  CHECK(qnum_from_key_code("AltLeft") == 0x38u);
  CHECK(qnum_from_key_code("AltRight") == 0xB8u);  // E0 38
  CHECK(qnum_from_key_code("ArrowUp") == 0xC8u);
  CHECK(qnum_from_key_code("ArrowLeft") == 0xCBu);
  CHECK(qnum_from_key_code("ArrowRight") == 0xCDu);
  CHECK(qnum_from_key_code("ArrowDown") == 0xD0u);
  CHECK(qnum_from_key_code("MetaLeft") == 0xDBu);
  CHECK(qnum_from_key_code("MetaRight") == 0xDCu);
  CHECK(qnum_from_key_code("ContextMenu") == 0xDDu);
  CHECK(qnum_from_key_code("NumpadDivide") == 0xB5u);
  CHECK(qnum_from_key_code("Pause") == 0xC6u);
  CHECK(qnum_from_key_code("IntlBackslash") == 0x56u);
  CHECK(qnum_from_key_code("OSLeft") == 0xDBu);  // the name older browsers used
  CHECK_FALSE(qnum_from_key_code("NoSuchKey").has_value());
  CHECK_FALSE(qnum_from_key_code("").has_value());
}

TEST_CASE("set-1 scancodes with the 0xE0 prefix map to qnums with bit 7 set") {
  CHECK(qnum_from_scancode(0x01) == 0x01u);
  CHECK(qnum_from_scancode(0x1C) == 0x1Cu);
  CHECK(qnum_from_scancode(0xE01C) == 0x9Cu);  // keypad Enter
  CHECK(qnum_from_scancode(0xE01D) == 0x9Du);  // right Ctrl
  CHECK(qnum_from_scancode(0xE038) == 0xB8u);  // right Alt
  CHECK(qnum_from_scancode(0xE048) == 0xC8u);  // up
  CHECK(qnum_from_scancode(0xE05B) == 0xDBu);  // left Windows
  CHECK(qnum_from_scancode(0xE05C) == 0xDCu);  // right Windows
  CHECK(qnum_from_scancode(0x9C) == 0x1Cu);    // a break code names its key
  CHECK(qnum_from_scancode(0xE0C8) == 0xC8u);
  CHECK_FALSE(qnum_from_scancode(0).has_value());
  CHECK_FALSE(qnum_from_scancode(0xE0).has_value());     // a bare prefix
  CHECK_FALSE(qnum_from_scancode(0xE07F).has_value());   // no key sends this
  CHECK_FALSE(qnum_from_scancode(0x1234).has_value());   // not a prefix
  CHECK_FALSE(qnum_from_scancode(0x1E0048).has_value());
}

TEST_CASE("both tables agree on every key") {
  for (const KeyDefinition& key : key_definitions()) {
    INFO(std::string(key.code));
    auto from_code = qnum_from_key_code(key.code);
    auto from_scancode = qnum_from_scancode(key.scancode);
    REQUIRE(from_code.has_value());
    REQUIRE(from_scancode.has_value());
    CHECK(*from_code == *from_scancode);
  }
}
