#include "capture/qemu/display_connection.hpp"

#include <fmt/format.h>
#include <gio/gunixfdlist.h>

#include "capture/qemu/qmp_client.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::capture::qemu {

namespace {

constexpr std::chrono::milliseconds kQmpTimeout{5000};

core::Result<glib::GObjectPtr<GDBusConnection>> open_bus(const std::string& address, GCancellable* cancellable) {
  glib::GErrorSlot err;
  std::string resolved = address;
  if (address == "session") {
    gchar* session = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SESSION, cancellable, err.out());
    if (!session) return core::Error{fmt::format("no session bus: {}", err.message())};
    resolved = session;
    g_free(session);
  }
  auto flags = GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                    G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION);
  glib::GObjectPtr<GDBusConnection> connection(
      g_dbus_connection_new_for_address_sync(resolved.c_str(), flags, nullptr, cancellable, err.out()));
  if (!connection) return core::Error{fmt::format("cannot connect to the bus at {}: {}", resolved, err.message())};
  return connection;
}

}  // namespace

std::string DisplayTarget::describe() const {
  return kind == Kind::Bus ? "qemu-dbus:" + address : "qemu-qmp:" + address;
}

std::string ConsoleInfo::object_path() const { return fmt::format("/org/qemu/Display1/Console_{}", id); }

core::Result<glib::GObjectPtr<GDBusConnection>> open_peer_connection(core::UniqueFd fd, GDBusConnectionFlags flags,
                                                               GCancellable* cancellable) {
  glib::GErrorSlot err;
  glib::GObjectPtr<GSocket> socket(g_socket_new_from_fd(fd.get(), err.out()));
  if (!socket) return core::Error{fmt::format("cannot wrap socket fd {}: {}", fd.get(), err.message())};
  fd.release();  // the GSocket owns it now
  glib::GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(socket.get()));
  glib::GObjectPtr<GDBusConnection> connection(g_dbus_connection_new_sync(
      G_IO_STREAM(stream.get()), nullptr, GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | flags),
      nullptr, cancellable, err.out()));
  if (!connection) return core::Error{fmt::format("peer-to-peer D-Bus handshake failed: {}", err.message())};
  return connection;
}

core::Result<std::unique_ptr<DisplayConnection>> DisplayConnection::open(const DisplayTarget& target,
                                                                         GCancellable* cancellable) {
  std::unique_ptr<DisplayConnection> display;
  if (target.kind == DisplayTarget::Kind::Bus) {
    auto bus = open_bus(target.address, cancellable);
    if (!bus) return core::Error{bus.error()};
    display.reset(new DisplayConnection(std::move(*bus), false));
  } else {
    auto qmp = QmpClient::connect(target.address, kQmpTimeout);
    if (!qmp) return core::Error{qmp.error()};
    auto fd = qmp->add_dbus_display_client();
    if (!fd) return core::Error{fd.error()};
    auto peer = open_peer_connection(std::move(*fd), G_DBUS_CONNECTION_FLAGS_NONE, cancellable);
    if (!peer) return core::Error{peer.error()};
    display.reset(new DisplayConnection(std::move(*peer), true));
  }
  // Does a QEMU display answer? (On a bus, QEMU may not have claimed its name yet.)
  auto name = display->get_property(kVmPath, "org.qemu.Display1.VM", "Name", cancellable);
  if (!name) return core::Error{fmt::format("no QEMU display on {}: {}", target.describe(), name.error())};
  return display;
}

DisplayConnection::~DisplayConnection() {
  if (connection_) g_dbus_connection_close(connection_.get(), nullptr, nullptr, nullptr);
}

core::Result<glib::GVariantPtr> DisplayConnection::call(const std::string& path, const char* interface, const char* method,
                                                  GVariant* parameters, GUnixFDList* fds,
                                                  GCancellable* cancellable) const {
  glib::GErrorSlot err;
  glib::GVariantPtr reply(g_dbus_connection_call_with_unix_fd_list_sync(
      connection_.get(), peer_name(), path.c_str(), interface, method, parameters, nullptr,
      G_DBUS_CALL_FLAGS_NO_AUTO_START, kCallTimeoutMs, fds, nullptr, cancellable, err.out()));
  if (!reply) return core::Error{fmt::format("{}.{} on {}: {}", interface, method, path, err.message())};
  return reply;
}

core::Result<glib::GVariantPtr> DisplayConnection::get_property(const std::string& path, const char* interface,
                                                          const char* name, GCancellable* cancellable) const {
  auto reply = call(path, "org.freedesktop.DBus.Properties", "Get", g_variant_new("(ss)", interface, name), nullptr,
                    cancellable);
  if (!reply) return core::Error{fmt::format("reading {}.{}: {}", interface, name, reply.error())};
  GVariant* value = nullptr;
  g_variant_get(reply->get(), "(v)", &value);
  return glib::GVariantPtr(value);
}

core::Result<std::vector<uint32_t>> DisplayConnection::console_ids(GCancellable* cancellable) const {
  auto ids = get_property(kVmPath, "org.qemu.Display1.VM", "ConsoleIDs", cancellable);
  if (!ids) return core::Error{ids.error()};
  if (!g_variant_is_of_type(ids->get(), G_VARIANT_TYPE("au")))
    return core::Error{fmt::format("ConsoleIDs has type {}, expected au", g_variant_get_type_string(ids->get()))};
  gsize n = 0;
  const auto* values = static_cast<const uint32_t*>(g_variant_get_fixed_array(ids->get(), &n, sizeof(uint32_t)));
  return std::vector<uint32_t>(values, values + n);
}

core::Result<ConsoleInfo> DisplayConnection::console(uint32_t id, GCancellable* cancellable) const {
  ConsoleInfo info;
  info.id = id;
  const std::string path = info.object_path();
  auto all = call(path, "org.freedesktop.DBus.Properties", "GetAll", g_variant_new("(s)", "org.qemu.Display1.Console"),
                  nullptr, cancellable);
  if (!all) return core::Error{fmt::format("console {}: {}", id, all.error())};
  glib::GVariantPtr dict(g_variant_get_child_value(all->get(), 0));
  auto read_string = [&](const char* key) {
    const char* s = nullptr;
    return g_variant_lookup(dict.get(), key, "&s", &s) ? std::string(s) : std::string();
  };
  info.label = read_string("Label");
  info.type = read_string("Type");
  g_variant_lookup(dict.get(), "Head", "u", &info.head);
  g_variant_lookup(dict.get(), "Width", "u", &info.width);
  g_variant_lookup(dict.get(), "Height", "u", &info.height);
  return info;
}

core::Result<ConsoleInfo> DisplayConnection::choose_console(int64_t wanted, GCancellable* cancellable) const {
  auto ids = console_ids(cancellable);
  if (!ids) return core::Error{ids.error()};
  std::string seen;
  for (uint32_t id : *ids) {
    if (wanted >= 0 && int64_t(id) != wanted) continue;
    auto info = console(id, cancellable);
    if (!info) return core::Error{info.error()};
    if (info->graphic()) return *info;
    seen += fmt::format(" {}({})", id, info->type);
    if (wanted >= 0) return core::Error{fmt::format("console {} is a {} console, not a graphic one", id, info->type)};
  }
  if (wanted >= 0) return core::Error{fmt::format("the VM has no console {} (ConsoleIDs:{})", wanted, [&] {
                                        std::string s;
                                        for (uint32_t id : *ids) s += fmt::format(" {}", id);
                                        return s;
                                      }())};
  return core::Error{fmt::format("the VM has no graphic console (consoles:{})", seen.empty() ? " none" : seen)};
}

}  // namespace vdistream::capture::qemu
