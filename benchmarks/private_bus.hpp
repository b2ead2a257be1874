// A private D-Bus bus for one VM (as libvirt runs one per VM): a dbus-daemon listening on a unix
// socket in a directory of ours, anyone of this user may own any name on it. QEMU joins it with
// -display dbus,addr=ADDRESS; a QemuSource finds the display there.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "benchmarks/child_process.hpp"
#include "core/status.hpp"

namespace vdistream::bench {

class PrivateBus {
 public:
  // Starts dbus-daemon with its socket at DIR/bus (config DIR/bus.conf, log DIR/dbus.log) and
  // waits, at most `limit`, until the socket exists.
  static core::Result<std::unique_ptr<PrivateBus>> start(const std::string& dir,
                                                         std::chrono::milliseconds limit = std::chrono::seconds(10));
  ~PrivateBus() = default;

  const std::string& socket_path() const { return socket_; }
  std::string address() const { return "unix:path=" + socket_; }  // no ",guid=": QEMU's option parser splits on commas

 private:
  PrivateBus() = default;
  std::string socket_;
  ChildProcess daemon_;
};

}  // namespace vdistream::bench
