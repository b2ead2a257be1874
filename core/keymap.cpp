#include "core/keymap.hpp"

#include <array>

namespace vdistream::core {

namespace {

constexpr uint16_t kExtendedPrefix = 0xE000;

constexpr std::array<KeyDefinition, 110> kKeys{{
    {"Escape", 0x01},         {"Digit1", 0x02},        {"Digit2", 0x03},         {"Digit3", 0x04},
    {"Digit4", 0x05},         {"Digit5", 0x06},        {"Digit6", 0x07},         {"Digit7", 0x08},
    {"Digit8", 0x09},         {"Digit9", 0x0A},        {"Digit0", 0x0B},         {"Minus", 0x0C},
    {"Equal", 0x0D},          {"Backspace", 0x0E},     {"Tab", 0x0F},            {"KeyQ", 0x10},
    {"KeyW", 0x11},           {"KeyE", 0x12},          {"KeyR", 0x13},           {"KeyT", 0x14},
    {"KeyY", 0x15},           {"KeyU", 0x16},          {"KeyI", 0x17},           {"KeyO", 0x18},
    {"KeyP", 0x19},           {"BracketLeft", 0x1A},   {"BracketRight", 0x1B},   {"Enter", 0x1C},
    {"ControlLeft", 0x1D},    {"KeyA", 0x1E},          {"KeyS", 0x1F},           {"KeyD", 0x20},
    {"KeyF", 0x21},           {"KeyG", 0x22},          {"KeyH", 0x23},           {"KeyJ", 0x24},
    {"KeyK", 0x25},           {"KeyL", 0x26},          {"Semicolon", 0x27},      {"Quote", 0x28},
    {"Backquote", 0x29},      {"ShiftLeft", 0x2A},     {"Backslash", 0x2B},      {"KeyZ", 0x2C},
    {"KeyX", 0x2D},           {"KeyC", 0x2E},          {"KeyV", 0x2F},           {"KeyB", 0x30},
    {"KeyN", 0x31},           {"KeyM", 0x32},          {"Comma", 0x33},          {"Period", 0x34},
    {"Slash", 0x35},          {"ShiftRight", 0x36},    {"NumpadMultiply", 0x37}, {"AltLeft", 0x38},
    {"Space", 0x39},          {"CapsLock", 0x3A},      {"F1", 0x3B},             {"F2", 0x3C},
    {"F3", 0x3D},             {"F4", 0x3E},            {"F5", 0x3F},             {"F6", 0x40},
    {"F7", 0x41},             {"F8", 0x42},            {"F9", 0x43},             {"F10", 0x44},
    {"NumLock", 0x45},        {"ScrollLock", 0x46},    {"Numpad7", 0x47},        {"Numpad8", 0x48},
    {"Numpad9", 0x49},        {"NumpadSubtract", 0x4A}, {"Numpad4", 0x4B},       {"Numpad5", 0x4C},
    {"Numpad6", 0x4D},        {"NumpadAdd", 0x4E},     {"Numpad1", 0x4F},        {"Numpad2", 0x50},
    {"Numpad3", 0x51},        {"Numpad0", 0x52},       {"NumpadDecimal", 0x53},  {"IntlBackslash", 0x56},
    {"F11", 0x57},            {"F12", 0x58},           {"NumpadEqual", 0x59},    {"IntlRo", 0x73},
    {"IntlYen", 0x7D},        {"NumpadComma", 0x7E},
    // Extended keys: the 0xE0 prefix.
    {"NumpadEnter", 0xE01C},  {"ControlRight", 0xE01D}, {"NumpadDivide", 0xE035}, {"PrintScreen", 0xE037},
    {"AltRight", 0xE038},     {"Pause", 0xE046},       {"Home", 0xE047},         {"ArrowUp", 0xE048},
    {"PageUp", 0xE049},       {"ArrowLeft", 0xE04B},   {"ArrowRight", 0xE04D},   {"End", 0xE04F},
    {"ArrowDown", 0xE050},    {"PageDown", 0xE051},    {"Insert", 0xE052},       {"Delete", 0xE053},
    {"MetaLeft", 0xE05B},     {"MetaRight", 0xE05C},   {"ContextMenu", 0xE05D},  {"Power", 0xE05E},
}};

// Names older browsers used for the same physical keys.
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kAliases{{
    {"OSLeft", "MetaLeft"},
    {"OSRight", "MetaRight"},
}};

constexpr uint32_t qnum_of(uint16_t scancode) {
  return (scancode & kExtendedPrefix) == kExtendedPrefix ? 0x80u | (scancode & 0x7Fu) : scancode & 0x7Fu;
}

}  // namespace

std::span<const KeyDefinition> key_definitions() { return kKeys; }

std::optional<uint32_t> qnum_from_scancode(uint32_t scancode) {
  if (scancode > 0xFFFF || scancode == 0xE0 || scancode == 0xE1) return std::nullopt;  // prefixes, not keys
  const bool extended = (scancode & 0xFF00) == kExtendedPrefix;
  if ((scancode & 0xFF00) != 0 && !extended) return std::nullopt;
  const auto make = uint16_t((scancode & 0xFF7F));  // a break code names the same key
  if ((make & 0x7F) == 0) return std::nullopt;
  if (!extended) return qnum_of(make);  // every set-1 make code below 0x80 is a key QEMU knows
  for (const KeyDefinition& key : kKeys)
    if (key.scancode == make) return qnum_of(make);
  return std::nullopt;
}

std::optional<uint32_t> qnum_from_key_code(std::string_view code) {
  for (const auto& [alias, name] : kAliases)
    if (code == alias) code = name;
  for (const KeyDefinition& key : kKeys)
    if (key.code == code) return qnum_of(key.scancode);
  return std::nullopt;
}

}  // namespace vdistream::core
