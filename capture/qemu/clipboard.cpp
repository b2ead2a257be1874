#include "capture/qemu/clipboard.hpp"

#include <fmt/format.h>

#include <cstring>

#include "glib/ptr.hpp"

namespace vdistream::capture::qemu {

namespace {

// org.qemu.Display1.Clipboard of QEMU's ui/dbus-display1.xml (the same from 7.1 to 10.x).
constexpr const char* kClipboardXml = R"(<node>
  <interface name="org.qemu.Display1.Clipboard">
    <method name="Register"/>
    <method name="Unregister"/>
    <method name="Grab">
      <arg type="u" name="selection" direction="in"/><arg type="u" name="serial" direction="in"/>
      <arg type="as" name="mimes" direction="in"/>
    </method>
    <method name="Release"><arg type="u" name="selection" direction="in"/></method>
    <method name="Request">
      <arg type="u" name="selection" direction="in"/><arg type="as" name="mimes" direction="in"/>
      <arg type="s" name="reply_mime" direction="out"/><arg type="ay" name="data" direction="out"/>
    </method>
  </interface>
</node>)";

constexpr uint32_t kSelectionClipboard = 0;
constexpr const char* kFailedError = "org.qemu.Display1.Error.Failed";

bool has_text(GVariant* mimes) {
  GVariantIter it;
  g_variant_iter_init(&it, mimes);
  const char* mime;
  while (g_variant_iter_next(&it, "&s", &mime))
    if (strcmp(mime, core::kClipboardText) == 0) return true;
  return false;
}

}  // namespace

struct QemuClipboard::State {
  core::Logger log;
  GDBusConnection* connection = nullptr;  // the display's; it outlives us (the session owns it)
  const char* peer = nullptr;
  GMainContext* context = nullptr;
  std::shared_ptr<core::ClipboardHub> hub;
  core::VmClipboard* owner = nullptr;
  glib::GDBusNodeInfoPtr node;
  guint registration = 0;
  bool attached = false;   // QEMU took our Register
  uint32_t serial = 0;     // of the current grab (ours or QEMU's)
  bool ours = false;       // we hold the clipboard (a viewer copied)

  explicit State(const std::string& name) : log(name) {}

  // Runs `fn` on the connection's context later (never inside the caller), unless the clipboard
  // is gone by then.
  static void queue(const std::shared_ptr<State>& state, std::function<void(State&)> fn) {
    struct Task {
      std::weak_ptr<State> state;
      std::function<void(State&)> fn;
    };
    GSource* idle = g_idle_source_new();
    g_source_set_callback(
        idle,
        [](gpointer data) -> gboolean {
          auto* task = static_cast<Task*>(data);
          if (auto s = task->state.lock()) task->fn(*s);
          return G_SOURCE_REMOVE;
        },
        new Task{state, std::move(fn)}, [](gpointer data) { delete static_cast<Task*>(data); });
    g_source_attach(idle, state->context);
    g_source_unref(idle);
  }

  // A call to QEMU's Clipboard whose answer goes to `done` while we still exist.
  void call(const std::shared_ptr<State>& self, const char* method, GVariant* parameters, const GVariantType* reply,
            std::function<void(State&, core::Result<glib::GVariantPtr>)> done) {
    struct Pending {
      std::weak_ptr<State> state;
      std::function<void(State&, core::Result<glib::GVariantPtr>)> done;
    };
    g_dbus_connection_call(
        connection, peer, kPath, kInterface, method, parameters, reply, G_DBUS_CALL_FLAGS_NO_AUTO_START, 5000, nullptr,
        [](GObject* source, GAsyncResult* result, gpointer data) {
          std::unique_ptr<Pending> pending(static_cast<Pending*>(data));
          glib::GErrorSlot err;
          glib::GVariantPtr value(g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, err.out()));
          auto s = pending->state.lock();
          if (!s) return;
          if (value)
            pending->done(*s, std::move(value));
          else
            pending->done(*s, core::Error{err.message()});
        },
        new Pending{self, std::move(done)});
  }

  void on_register(core::Result<glib::GVariantPtr> reply) {
    if (!reply) {
      const std::string why = fmt::format("QEMU refused our clipboard registration: {}", reply.error());
      log.warn("clipboard: {}; copy and paste with this VM is off", why);
      hub->vm_unavailable(why);
      return;
    }
    attached = true;
    serial = 0;
    hub->attach_vm(owner);
    log.info("clipboard: registered with the VM's clipboard");
  }

  core::Result<GVariant*> handle(std::string_view method, GVariant* parameters) {
    if (method == "Register") {  // QEMU reset the serial counter
      serial = 0;
      return static_cast<GVariant*>(nullptr);
    }
    if (method == "Unregister") return static_cast<GVariant*>(nullptr);
    uint32_t selection = 0;
    if (method == "Grab") {
      uint32_t their_serial = 0;
      GVariant* mimes = nullptr;
      g_variant_get(parameters, "(uu@as)", &selection, &their_serial, &mimes);
      glib::GVariantPtr hold(mimes);
      if (selection != kSelectionClipboard) return static_cast<GVariant*>(nullptr);
      // The higher serial owns the clipboard; on a tie the client (we) keeps it.
      if (their_serial < serial || (their_serial == serial && ours)) {
        log.debug("clipboard: the VM's grab {} is older than ours ({}), discarded", their_serial, serial);
        return static_cast<GVariant*>(nullptr);
      }
      serial = their_serial;
      ours = false;
      if (has_text(mimes))
        hub->vm_grabbed();
      else
        hub->vm_released();  // something that is not text: our viewers have nothing to paste
      return static_cast<GVariant*>(nullptr);
    }
    if (method == "Release") {
      g_variant_get(parameters, "(u)", &selection);
      if (selection == kSelectionClipboard && !ours) hub->vm_released();
      return static_cast<GVariant*>(nullptr);
    }
    if (method == "Request") {
      GVariant* mimes = nullptr;
      g_variant_get(parameters, "(u@as)", &selection, &mimes);
      glib::GVariantPtr hold(mimes);
      if (selection != kSelectionClipboard) return core::Error{fmt::format("selection {} is not shared", selection)};
      if (!ours) return core::Error{"Empty clipboard"};
      if (!has_text(mimes)) return core::Error{fmt::format("only {} is offered", core::kClipboardText)};
      auto text = hub->vm_paste();
      if (!text) return core::Error{text.error()};
      GVariant* data = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, text->data(), text->size(), 1);
      return g_variant_new("(s@ay)", core::kClipboardText, data);
    }
    return core::Error{fmt::format("unknown method {}", method)};
  }

  static void on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                             GVariant* parameters, GDBusMethodInvocation* invocation, gpointer data) {
    auto* self = static_cast<State*>(data);
    auto reply = self->handle(method, parameters);
    if (reply)
      g_dbus_method_invocation_return_value(invocation, *reply);
    else
      g_dbus_method_invocation_return_dbus_error(invocation, kFailedError, reply.error().c_str());
  }
};

core::Result<std::unique_ptr<QemuClipboard>> QemuClipboard::create(GDBusConnection* connection, const char* peer,
                                                                   std::shared_ptr<core::ClipboardHub> hub,
                                                                   const std::string& name) {
  std::unique_ptr<QemuClipboard> self(new QemuClipboard());
  auto state = std::make_shared<State>(name);
  state->connection = connection;
  state->peer = peer;
  state->context = g_main_context_ref_thread_default();
  g_main_context_unref(state->context);  // the thread's; it outlives the clipboard
  state->hub = std::move(hub);
  state->owner = self.get();
  glib::GErrorSlot err;
  state->node.reset(g_dbus_node_info_new_for_xml(kClipboardXml, err.out()));
  if (!state->node) return core::Error{fmt::format("clipboard introspection data: {}", err.message())};
  static const GDBusInterfaceVTable vtable = {&State::on_method_call, nullptr, nullptr, {}};
  state->registration =
      g_dbus_connection_register_object(connection, kPath, state->node->interfaces[0], &vtable, state.get(), nullptr, err.out());
  if (state->registration == 0) return core::Error{fmt::format("exporting {}: {}", kPath, err.message())};
  self->state_ = state;
  // Asynchronous: QEMU reads our object's properties before it answers.
  state->call(state, "Register", nullptr, nullptr,
              [](State& s, core::Result<glib::GVariantPtr> reply) { s.on_register(std::move(reply)); });
  return self;
}

QemuClipboard::~QemuClipboard() {
  if (!state_) return;
  state_->hub->detach_vm(this);
  if (state_->attached && !g_dbus_connection_is_closed(state_->connection))
    g_dbus_connection_call(state_->connection, state_->peer, kPath, kInterface, "Unregister", nullptr, nullptr,
                           G_DBUS_CALL_FLAGS_NO_AUTO_START, 1000, nullptr, nullptr, nullptr);
  g_dbus_connection_unregister_object(state_->connection, state_->registration);
}

void QemuClipboard::grab() {
  State::queue(state_, [self = std::weak_ptr<State>(state_)](State& s) {
    if (!s.attached) return;
    s.ours = true;
    ++s.serial;
    const char* mimes[] = {core::kClipboardText, nullptr};
    s.call(self.lock(), "Grab", g_variant_new("(uu^as)", kSelectionClipboard, s.serial, mimes), nullptr,
           [serial = s.serial](State& s, core::Result<glib::GVariantPtr> reply) {
             if (!reply) s.log.warn("clipboard: the VM refused our grab {}: {}", serial, reply.error());
           });
  });
}

void QemuClipboard::release() {
  State::queue(state_, [self = std::weak_ptr<State>(state_)](State& s) {
    if (!s.attached || !s.ours) return;
    s.ours = false;
    s.call(self.lock(), "Release", g_variant_new("(u)", kSelectionClipboard), nullptr,
           [](State&, core::Result<glib::GVariantPtr>) {});
  });
}

void QemuClipboard::request(std::function<void(core::Result<std::string>)> done) {
  State::queue(state_, [self = std::weak_ptr<State>(state_), done = std::move(done)](State& s) mutable {
    const char* mimes[] = {core::kClipboardText, nullptr};
    s.call(self.lock(), "Request", g_variant_new("(u^as)", kSelectionClipboard, mimes), G_VARIANT_TYPE("(say)"),
           [done = std::move(done)](State&, core::Result<glib::GVariantPtr> reply) {
             if (!reply) return done(core::Error{reply.error()});
             const char* mime = nullptr;
             GVariant* data = nullptr;
             g_variant_get(reply->get(), "(&s@ay)", &mime, &data);
             glib::GVariantPtr hold(data);
             if (strcmp(mime, core::kClipboardText) != 0)
               return done(core::Error{fmt::format("the VM answered with {}, not {}", mime, core::kClipboardText)});
             gsize size = 0;
             const auto* bytes = static_cast<const char*>(g_variant_get_fixed_array(data, &size, 1));
             while (size && bytes[size - 1] == '\0') --size;  // some of QEMU's peers end text with a NUL
             const char* end = nullptr;
             if (size && !g_utf8_validate(bytes, gssize(size), &end))
               return done(core::Error{fmt::format("the VM's text is not UTF-8 (byte {} of {})", end - bytes, size)});
             done(std::string(bytes ? bytes : "", size));
           });
  });
}

}  // namespace vdistream::capture::qemu
