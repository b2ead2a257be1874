// The desktop's keyboard, tablet (absolute, client mouse mode) and mouse (relative, server mouse
// mode) as spice-server sees them, delivering core::InputEvents to the VM's InputSink.
// spice-server calls these on the desktop's thread.
#pragma once

#include <cstdint>
#include <memory>

#include "core/input.hpp"
#include "spice/scancode.hpp"

typedef struct SpiceBaseInstance SpiceBaseInstance;

namespace vdistream::spice {

// Buttons as spice-server hands them to the input interfaces (PS/2 order, as QEMU maps them).
enum SpiceLocalButtons : uint32_t { kLocalLeft = 0x01, kLocalRight = 0x02, kLocalMiddle = 0x04 };

// Turns successive button masks and wheel steps into button events. Pure: unit-tested.
class ButtonTracker {
 public:
  template <typename Emit>
  void update(uint32_t mask, Emit&& emit) {
    static constexpr struct {
      uint32_t bit;
      core::MouseButton button;
    } kMap[] = {{kLocalLeft, core::MouseButton::Left},
                {kLocalRight, core::MouseButton::Right},
                {kLocalMiddle, core::MouseButton::Middle}};
    for (const auto& m : kMap)
      if ((mask ^ state_) & m.bit) emit(core::InputEvent::button_event(m.button, (mask & m.bit) != 0));
    state_ = mask & (kLocalLeft | kLocalRight | kLocalMiddle);
  }
  // A wheel step is a click of WheelUp (dz < 0) or WheelDown (dz > 0), as QEMU's mice see it.
  template <typename Emit>
  static void wheel(int dz, Emit&& emit) {
    const core::MouseButton b = dz < 0 ? core::MouseButton::WheelUp : core::MouseButton::WheelDown;
    for (int i = 0; i < (dz < 0 ? -dz : dz); ++i) {
      emit(core::InputEvent::button_event(b, true));
      emit(core::InputEvent::button_event(b, false));
    }
  }

 private:
  uint32_t state_ = 0;
};

class SpiceInputs {
 public:
  explicit SpiceInputs(core::InputSink* sink);  // sink may be nullptr: input is dropped
  ~SpiceInputs();
  SpiceInputs(const SpiceInputs&) = delete;
  SpiceInputs& operator=(const SpiceInputs&) = delete;

  // After spice_server_destroy(): frees what spice-server allocated for the keyboard and mouse
  // and never frees itself (0.15.1 has no removal path for them).
  void free_server_state();

  SpiceBaseInstance* keyboard();
  SpiceBaseInstance* mouse();
  SpiceBaseInstance* tablet();

  struct Instances;  // the spice-server instance structs (inputs.cpp)

  // Called by the instances.
  void key_byte(uint8_t byte);
  void relative(int dx, int dy, int dz, uint32_t buttons);
  void absolute(int x, int y, uint32_t buttons);
  void wheel(int dz, uint32_t buttons);
  void buttons(uint32_t buttons);
  void logical_size(int width, int height);

  // The VM's keyboard LEDs (InputSink::keyboard_leds): what spice-server asks for when a client
  // connects, and poll_leds() (desktop thread, after the keyboard was added) tells the clients
  // when they changed.
  uint8_t leds() const { return sink_ ? uint8_t(sink_->keyboard_leds() & 7u) : 0; }
  void poll_leds();

 private:
  void send(const core::InputEvent& e) {
    if (sink_) sink_->send(e);
  }
  core::InputSink* sink_;
  std::unique_ptr<Instances> instances_;
  ScancodeDecoder decoder_;
  ButtonTracker buttons_;
  int width_ = 0, height_ = 0;  // the tablet's logical size (the primary surface)
  uint8_t leds_sent_ = 0;
};

}  // namespace vdistream::spice
