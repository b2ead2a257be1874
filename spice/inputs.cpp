#include "spice/inputs.hpp"

#include <glib.h>
#include <spice.h>

#include <algorithm>

namespace vdistream::spice {

// Each instance struct first, then its owner: spice-server's instance pointer is the wrapper's.
struct KbdHandle {
  SpiceKbdInstance sin{};
  SpiceInputs* owner = nullptr;
};
struct MouseHandle {
  SpiceMouseInstance sin{};
  SpiceInputs* owner = nullptr;
};
struct TabletHandle {
  SpiceTabletInstance sin{};
  SpiceInputs* owner = nullptr;
};

struct SpiceInputs::Instances {
  KbdHandle kbd;
  MouseHandle mouse;
  TabletHandle tablet;
};

namespace {

template <typename Handle, typename Instance>
SpiceInputs* owner_of(Instance* sin) {
  return reinterpret_cast<Handle*>(sin)->owner;
}

void kbd_push(SpiceKbdInstance* sin, uint8_t byte) { owner_of<KbdHandle>(sin)->key_byte(byte); }
uint8_t kbd_leds(SpiceKbdInstance* sin) { return owner_of<KbdHandle>(sin)->leds(); }

void mouse_motion(SpiceMouseInstance* sin, int dx, int dy, int dz, uint32_t buttons) {
  owner_of<MouseHandle>(sin)->relative(dx, dy, dz, buttons);
}
void mouse_buttons(SpiceMouseInstance* sin, uint32_t buttons) { owner_of<MouseHandle>(sin)->buttons(buttons); }

void tablet_size(SpiceTabletInstance* sin, int w, int h) { owner_of<TabletHandle>(sin)->logical_size(w, h); }
void tablet_position(SpiceTabletInstance* sin, int x, int y, uint32_t buttons) {
  owner_of<TabletHandle>(sin)->absolute(x, y, buttons);
}
void tablet_wheel(SpiceTabletInstance* sin, int dz, uint32_t buttons) { owner_of<TabletHandle>(sin)->wheel(dz, buttons); }
void tablet_buttons(SpiceTabletInstance* sin, uint32_t buttons) { owner_of<TabletHandle>(sin)->buttons(buttons); }

const SpiceKbdInterface kKbd = {
    {SPICE_INTERFACE_KEYBOARD, "vdistream keyboard", SPICE_INTERFACE_KEYBOARD_MAJOR, SPICE_INTERFACE_KEYBOARD_MINOR},
    kbd_push,
    kbd_leds,
};
const SpiceMouseInterface kMouse = {
    {SPICE_INTERFACE_MOUSE, "vdistream mouse", SPICE_INTERFACE_MOUSE_MAJOR, SPICE_INTERFACE_MOUSE_MINOR},
    mouse_motion,
    mouse_buttons,
};
const SpiceTabletInterface kTablet = {
    {SPICE_INTERFACE_TABLET, "vdistream tablet", SPICE_INTERFACE_TABLET_MAJOR, SPICE_INTERFACE_TABLET_MINOR},
    tablet_size,
    tablet_position,
    tablet_wheel,
    tablet_buttons,
};

}  // namespace

SpiceInputs::SpiceInputs(core::InputSink* sink) : sink_(sink), instances_(std::make_unique<Instances>()) {
  instances_->kbd.sin.base.sif = &kKbd.base;
  instances_->kbd.owner = this;
  instances_->mouse.sin.base.sif = &kMouse.base;
  instances_->mouse.owner = this;
  instances_->tablet.sin.base.sif = &kTablet.base;
  instances_->tablet.owner = this;
}

SpiceInputs::~SpiceInputs() = default;

void SpiceInputs::free_server_state() {
#if SPICE_SERVER_VERSION <= 0x000f01
  // inputs_channel_set_keyboard/set_mouse g_new0 these; spice_server_remove_interface only
  // handles the tablet, and spice_server_destroy leaves them.
  g_free(instances_->kbd.sin.st);
  instances_->kbd.sin.st = nullptr;
  g_free(instances_->mouse.sin.st);
  instances_->mouse.sin.st = nullptr;
#endif
}

SpiceBaseInstance* SpiceInputs::keyboard() { return &instances_->kbd.sin.base; }
SpiceBaseInstance* SpiceInputs::mouse() { return &instances_->mouse.sin.base; }
SpiceBaseInstance* SpiceInputs::tablet() { return &instances_->tablet.sin.base; }

void SpiceInputs::poll_leds() {
  const uint8_t now = leds();
  if (now == leds_sent_) return;
  leds_sent_ = now;
  spice_server_kbd_leds(&instances_->kbd.sin, now);
}

void SpiceInputs::key_byte(uint8_t byte) {
  if (auto key = decoder_.feed(byte)) send(core::InputEvent::key(key->qnum, key->pressed));
}

void SpiceInputs::relative(int dx, int dy, int dz, uint32_t mask) {
  if (dx || dy) send(core::InputEvent::move_by(dx, dy));
  if (dz) ButtonTracker::wheel(dz, [this](const core::InputEvent& e) { send(e); });
  buttons(mask);
}

void SpiceInputs::absolute(int x, int y, uint32_t mask) {
  if (width_ > 0) x = std::clamp(x, 0, width_ - 1);
  if (height_ > 0) y = std::clamp(y, 0, height_ - 1);
  send(core::InputEvent::move_to(x, y));
  buttons(mask);
}

void SpiceInputs::wheel(int dz, uint32_t mask) {
  ButtonTracker::wheel(dz, [this](const core::InputEvent& e) { send(e); });
  buttons(mask);
}

void SpiceInputs::buttons(uint32_t mask) {
  buttons_.update(mask, [this](const core::InputEvent& e) { send(e); });
}

void SpiceInputs::logical_size(int width, int height) {
  width_ = width;
  height_ = height;
}

}  // namespace vdistream::spice
