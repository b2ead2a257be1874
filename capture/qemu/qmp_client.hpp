// Just enough QMP to open a peer-to-peer D-Bus display connection: the greeting,
// qmp_capabilities, getfd (the fd travels as SCM_RIGHTS) and add_client @dbus-display.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/status.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::capture::qemu {

class QmpClient {
 public:
  // Connects to QEMU's QMP unix socket and leaves command mode on. `timeout` bounds every
  // exchange with QEMU.
  static core::Result<QmpClient> connect(const std::string& socket_path, std::chrono::milliseconds timeout);

  // Hands QEMU one end of a new socketpair as a D-Bus display client and returns the other end,
  // on which the caller runs the client side of the peer-to-peer D-Bus connection.
  core::Result<core::UniqueFd> add_dbus_display_client();

 private:
  QmpClient(core::UniqueFd fd, std::chrono::milliseconds timeout) : fd_(std::move(fd)), timeout_(timeout) {}
  core::Status send(const std::string& json, int fd_to_pass = -1);
  // Reads messages until the reply to the command just sent (events are skipped).
  core::Result<nlohmann::json> read_reply(const std::string& command);
  core::Result<std::string> read_line();

  core::UniqueFd fd_;
  std::chrono::milliseconds timeout_;
  std::string buffered_;
};

}  // namespace vdistream::capture::qemu
