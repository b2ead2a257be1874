// QEMU's clipboard (org.qemu.Display1.Clipboard, QEMU >= 7.1): both sides export the interface on
// /org/qemu/Display1/Clipboard of the display's D-Bus connection. We Register with QEMU's; QEMU
// then calls ours (Grab when the guest or another of QEMU's clipboard peers copies, Release,
// Request when it pastes what we hold) and we call its (Grab when a viewer copies, Request for
// the guest's text). Grabs carry a serial: the higher one owns the clipboard, a tie goes to us
// (the client), a lower one is discarded (QEMU's docs/interop/dbus-display.rst).
//
// QEMU asks for our data with a blocking call from its main loop; the hub answers it at once
// from the text it holds. Only the CLIPBOARD selection is shared (not PRIMARY), and only
// text/plain;charset=utf-8, the one type QEMU's D-Bus clipboard carries.
#pragma once

#include <gio/gio.h>

#include <memory>
#include <string>

#include "core/clipboard.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace vdistream::capture::qemu {

class QemuClipboard final : public core::VmClipboard {
 public:
  static constexpr const char* kPath = "/org/qemu/Display1/Clipboard";
  static constexpr const char* kInterface = "org.qemu.Display1.Clipboard";

  // Exports our object on `connection` (QEMU is `peer`: "org.qemu" on a bus, nullptr peer to
  // peer) and sends Register; the hub is attached once QEMU accepts it (or told why not). Runs
  // on the calling thread's thread-default context, which must be the connection's. The hub
  // must outlive this object.
  static core::Result<std::unique_ptr<QemuClipboard>> create(GDBusConnection* connection, const char* peer,
                                                             std::shared_ptr<core::ClipboardHub> hub,
                                                             const std::string& name);
  ~QemuClipboard() override;  // on the same thread: detaches from the hub, unexports
  QemuClipboard(const QemuClipboard&) = delete;
  QemuClipboard& operator=(const QemuClipboard&) = delete;

  // core::VmClipboard, from any thread (queued on the connection's context).
  void grab() override;
  void release() override;
  void request(std::function<void(core::Result<std::string>)> done) override;

  struct State;

 private:
  QemuClipboard() = default;
  std::shared_ptr<State> state_;
};

}  // namespace vdistream::capture::qemu
