// Input travelling back to the VM, and the cursor travelling out to the clients.
#pragma once

#include <cstdint>
#include <vector>

namespace vdistream::core {

// Mouse buttons as QEMU's D-Bus display numbers them.
enum class MouseButton : uint32_t { Left = 0, Middle = 1, Right = 2, WheelUp = 3, WheelDown = 4, Side = 5, Extra = 6 };

struct InputEvent {
  enum class Type { Key, Button, MoveAbsolute, MoveRelative };
  Type type = Type::Key;
  uint32_t qnum = 0;  // Key: QEMU qnum (PC XT set 1, extended keys 0x80 | code)
  MouseButton button = MouseButton::Left;
  bool pressed = false;  // Key, Button
  int32_t x = 0, y = 0;  // MoveAbsolute: desktop pixels; MoveRelative: delta

  static InputEvent key(uint32_t qnum, bool pressed) { return {Type::Key, qnum, MouseButton::Left, pressed, 0, 0}; }
  static InputEvent button_event(MouseButton b, bool pressed) { return {Type::Button, 0, b, pressed, 0, 0}; }
  static InputEvent move_to(int32_t x, int32_t y) { return {Type::MoveAbsolute, 0, MouseButton::Left, false, x, y}; }
  static InputEvent move_by(int32_t dx, int32_t dy) { return {Type::MoveRelative, 0, MouseButton::Left, false, dx, dy}; }
};

// Where input for one desktop goes (the VM's keyboard and mouse).
class InputSink {
 public:
  virtual ~InputSink() = default;
  virtual void send(const InputEvent& event) = 0;
  // The VM's keyboard LEDs, for clients that show them: scroll lock 1, num lock 2, caps lock 4
  // (QEMU's Keyboard.Modifiers and SPICE's modifier flags use the same bits). From any thread.
  virtual uint32_t keyboard_leds() const { return 0; }
};

// A pointer image: 32-bit ARGB, premultiplied as QEMU sends it, row-major without padding.
struct CursorShape {
  int32_t width = 0, height = 0;
  int32_t hot_x = 0, hot_y = 0;
  std::vector<uint32_t> argb;
};

struct CursorPosition {
  int32_t x = 0, y = 0;
  bool visible = true;
};

}  // namespace vdistream::core
