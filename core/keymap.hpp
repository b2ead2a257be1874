// Keys as QEMU's D-Bus display wants them (every transport's input ends here, so it lives in core): "qnum" numbers (PC XT scancode set 1; a key with the
// 0xE0 prefix becomes 0x80 | code). Our transports deliver two other forms: PC AT set-1
// scancodes with the 0xE0 prefix (SPICE) and KeyboardEvent.code names (browsers).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace vdistream::core {

struct KeyDefinition {
  std::string_view code;  // KeyboardEvent.code, e.g. "ArrowUp"
  uint16_t scancode;      // set 1 make code; 0xE0xx for the extended keys
};

// Every key of the 104/105-key PC layout (and a few international extras), in scancode order.
std::span<const KeyDefinition> key_definitions();

// A set-1 make code: 0x01..0x7F, or 0xE0xx for an extended key (0xE048 = ArrowUp). Break codes
// (bit 7 set) are accepted and mapped like their make code. Nothing for codes no PC key sends.
std::optional<uint32_t> qnum_from_scancode(uint32_t scancode);

// KeyboardEvent.code ("KeyA", "NumpadEnter", "MetaLeft"; also the older "OSLeft"/"OSRight").
std::optional<uint32_t> qnum_from_key_code(std::string_view code);

}  // namespace vdistream::core
