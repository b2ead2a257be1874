#include "capture/qemu/vm_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace vdistream::capture::qemu {

namespace {

constexpr const char* kKeyboard = "org.qemu.Display1.Keyboard";
constexpr const char* kMouse = "org.qemu.Display1.Mouse";
constexpr const char* kConsole = "org.qemu.Display1.Console";

}  // namespace

struct VmInput::Call {
  VmInput* sink;
  std::string what;
  std::function<void(core::Status)> done;
};

VmInput::VmInput(glib::LoopThread& loop, std::string name, int call_timeout_ms)
    : loop_(loop), log_(std::move(name)), call_timeout_ms_(call_timeout_ms) {}

VmInput::~VmInput() { detach(); }

void VmInput::send(const core::InputEvent& event) {
  loop_.post([this, event] { deliver(event); });
}

void VmInput::set_ui_info(uint32_t width, uint32_t height, std::function<void(core::Status)> done) {
  loop_.post([this, width, height, done = std::move(done)]() mutable {
    if (!connection_) {
      if (done) done(core::Error{"no VM connected"});
      return;
    }
    // Physical size unknown: 0 mm lets the guest assume its default DPI.
    call(kConsole, "SetUIInfo", g_variant_new("(qqiiuu)", 0, 0, 0, 0, width, height), std::move(done));
  });
}

void VmInput::attach(GDBusConnection* connection, const char* peer_name, const std::string& console_path,
                     bool absolute, uint32_t leds) {
  detach();
  connection_.reset(G_DBUS_CONNECTION(g_object_ref(connection)));
  cancellable_.reset(g_cancellable_new());
  peer_is_bus_ = peer_name != nullptr;
  peer_name_ = peer_name ? peer_name : "";
  console_path_ = console_path;
  absolute_ = absolute;
  leds_ = leds;
  // QEMU switches IsAbsolute when the guest's pointer device changes (a USB tablet appears), and
  // Keyboard.Modifiers when the guest sets its LEDs. arg0 (the interface) is checked on arrival.
  properties_subscription_ = g_dbus_connection_signal_subscribe(
      connection_.get(), peer_is_bus_ ? peer_name_.c_str() : nullptr, "org.freedesktop.DBus.Properties",
      "PropertiesChanged", console_path_.c_str(), nullptr, G_DBUS_SIGNAL_FLAGS_NONE, &VmInput::on_properties_changed,
      this, nullptr);
  log_.debug("input to {} ({} mouse)", console_path_, absolute ? "absolute" : "relative");
}

void VmInput::detach() {
  if (!connection_) return;
  if (properties_subscription_) g_dbus_connection_signal_unsubscribe(connection_.get(), properties_subscription_);
  properties_subscription_ = 0;
  g_cancellable_cancel(cancellable_.get());
  cancellable_.reset();
  connection_.reset();
}

void VmInput::on_properties_changed(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar*,
                                    GVariant* parameters, gpointer data) {
  auto* self = static_cast<VmInput*>(data);
  if (!g_variant_is_of_type(parameters, G_VARIANT_TYPE("(sa{sv}as)"))) return;
  const gchar* interface = nullptr;
  g_variant_get_child(parameters, 0, "&s", &interface);
  glib::GVariantPtr changed(g_variant_get_child_value(parameters, 1));
  if (g_strcmp0(interface, kKeyboard) == 0) {
    guint32 modifiers = 0;
    if (g_variant_lookup(changed.get(), "Modifiers", "u", &modifiers)) self->leds_ = modifiers & 7u;
    return;
  }
  if (g_strcmp0(interface, kMouse) != 0) return;
  gboolean absolute = FALSE;
  if (g_variant_lookup(changed.get(), "IsAbsolute", "b", &absolute)) {
    self->absolute_ = absolute != FALSE;
    self->log_.info("the VM's mouse is now {}", absolute ? "absolute" : "relative");
  }
}

bool VmInput::shed(const core::InputEvent& e) {
  const bool motion = e.type == core::InputEvent::Type::MoveAbsolute || e.type == core::InputEvent::Type::MoveRelative;
  const int bound = motion ? kMaxPendingMotion : e.pressed ? kMaxPendingPress : kMaxPending;
  if (pending_ < bound) return false;
  ++shed_;
  if (e.type == core::InputEvent::Type::MoveRelative) {
    unsent_dx_ = std::clamp(unsent_dx_ + e.x, -(1 << 20), 1 << 20);
    unsent_dy_ = std::clamp(unsent_dy_ + e.y, -(1 << 20), 1 << 20);
  }
  log_.warn_limited(refusals_logged_, "QEMU has {} input calls unanswered: {} not sent", int(pending_),
                    motion ? "pointer motion" : e.pressed ? "a press" : "a release");
  return true;
}

void VmInput::deliver(const core::InputEvent& e) {
  if (!connection_) {
    ++dropped_;
    return;
  }
  if (shed(e)) return;
  switch (e.type) {
    case core::InputEvent::Type::Key:
      call(kKeyboard, e.pressed ? "Press" : "Release", g_variant_new("(u)", e.qnum));
      return;
    case core::InputEvent::Type::Button:
      call(kMouse, e.pressed ? "Press" : "Release", g_variant_new("(u)", uint32_t(e.button)));
      return;
    case core::InputEvent::Type::MoveAbsolute:
      if (absolute_) {
        last_x_ = std::max(0, e.x);
        last_y_ = std::max(0, e.y);
        call(kMouse, "SetAbsPosition", g_variant_new("(uu)", uint32_t(last_x_), uint32_t(last_y_)));
      } else {
        // A relative mouse cannot be put somewhere: move it by how far the client's pointer went.
        call(kMouse, "RelMotion", g_variant_new("(ii)", e.x - last_x_, e.y - last_y_));
        last_x_ = e.x;
        last_y_ = e.y;
      }
      return;
    case core::InputEvent::Type::MoveRelative: {
      const int32_t dx = e.x + unsent_dx_, dy = e.y + unsent_dy_;
      unsent_dx_ = unsent_dy_ = 0;
      if (absolute_) {
        last_x_ = std::max(0, last_x_ + dx);
        last_y_ = std::max(0, last_y_ + dy);
        call(kMouse, "SetAbsPosition", g_variant_new("(uu)", uint32_t(last_x_), uint32_t(last_y_)));
      } else {
        call(kMouse, "RelMotion", g_variant_new("(ii)", dx, dy));
      }
      return;
    }
  }
}

void VmInput::call(const char* interface, const char* method, GVariant* parameters,
                   std::function<void(core::Status)> done) {
  ++pending_;
  ++sent_;
  auto* pending = new Call{this, fmt::format("{}.{}", std::strrchr(interface, '.') + 1, method), std::move(done)};
  g_dbus_connection_call(connection_.get(), peer_is_bus_ ? peer_name_.c_str() : nullptr, console_path_.c_str(),
                         interface, method, parameters, nullptr, G_DBUS_CALL_FLAGS_NO_AUTO_START, call_timeout_ms_,
                         cancellable_.get(), &VmInput::on_reply, pending);
}

void VmInput::on_reply(GObject* source, GAsyncResult* result, gpointer data) {
  std::unique_ptr<Call> pending(static_cast<Call*>(data));
  VmInput* self = pending->sink;
  glib::GErrorSlot err;
  glib::GVariantPtr reply(g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, err.out()));
  --self->pending_;
  core::Status status;
  if (!reply) {
    const bool cancelled = err.matches(G_IO_ERROR, G_IO_ERROR_CANCELLED);
    status = core::Error{fmt::format("{}: {}", pending->what, err.message())};
    if (!cancelled) {
      ++self->errors_;
      self->log_.warn_limited(self->refusals_logged_, "QEMU refused {}", status.error());
    }
  }
  if (pending->done) pending->done(status);
}

}  // namespace vdistream::capture::qemu
