// A D-Bus connection to one VM's display: through a bus (a private per-VM bus as libvirt runs
// it, or the session bus) or peer to peer through QEMU's QMP socket. Reads the VM's consoles.
#pragma once

#include <gio/gio.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"
#include "core/unique_fd.hpp"
#include "glib/ptr.hpp"

namespace vdistream::capture::qemu {

struct DisplayTarget {
  enum class Kind { Bus, Qmp };
  Kind kind = Kind::Bus;
  std::string address;  // a D-Bus address ("unix:path=...", or "session"), or the QMP socket's path
  std::string describe() const;
};

struct ConsoleInfo {
  uint32_t id = 0;
  std::string label, type;  // type "Graphic" or "Text"
  uint32_t head = 0, width = 0, height = 0;
  std::string object_path() const;
  bool graphic() const { return type == "Graphic"; }
};

class DisplayConnection {
 public:
  static constexpr const char* kBusName = "org.qemu";
  static constexpr const char* kVmPath = "/org/qemu/Display1/VM";

  // Connects and checks that a QEMU display answers. `cancellable` aborts a blocking connect.
  static core::Result<std::unique_ptr<DisplayConnection>> open(const DisplayTarget& target, GCancellable* cancellable);
  ~DisplayConnection();

  GDBusConnection* connection() const { return connection_.get(); }
  // The name to address QEMU by: "org.qemu" on a bus, nullptr on a peer-to-peer connection.
  const char* peer_name() const { return peer_to_peer_ ? nullptr : kBusName; }

  core::Result<std::vector<uint32_t>> console_ids(GCancellable* cancellable) const;
  core::Result<ConsoleInfo> console(uint32_t id, GCancellable* cancellable) const;
  // The graphic console `wanted`, or the first graphic one when `wanted` is negative.
  core::Result<ConsoleInfo> choose_console(int64_t wanted, GCancellable* cancellable) const;

  core::Result<glib::GVariantPtr> get_property(const std::string& path, const char* interface, const char* name,
                                         GCancellable* cancellable) const;
  core::Result<glib::GVariantPtr> call(const std::string& path, const char* interface, const char* method,
                                 GVariant* parameters, GUnixFDList* fds, GCancellable* cancellable) const;

  static constexpr int kCallTimeoutMs = 5000;

 private:
  DisplayConnection(glib::GObjectPtr<GDBusConnection> connection, bool peer_to_peer)
      : connection_(std::move(connection)), peer_to_peer_(peer_to_peer) {}

  glib::GObjectPtr<GDBusConnection> connection_;
  bool peer_to_peer_;
};

// The client side of a peer-to-peer D-Bus connection on `fd` (the peer is the authentication
// server). Blocks until authenticated; `flags` may add DELAY_MESSAGE_PROCESSING.
core::Result<glib::GObjectPtr<GDBusConnection>> open_peer_connection(core::UniqueFd fd, GDBusConnectionFlags flags,
                                                               GCancellable* cancellable);

}  // namespace vdistream::capture::qemu
