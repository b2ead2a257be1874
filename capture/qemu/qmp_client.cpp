#include "capture/qemu/qmp_client.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/clock.hpp"

namespace vdistream::capture::qemu {

namespace {

constexpr size_t kMaxLine = 1 << 20;  // QMP replies here are small; refuse a runaway peer

core::Status wait_ready(int fd, short events, int64_t deadline_ns, const char* what) {
  for (;;) {
    int64_t left_ms = (deadline_ns - core::monotonic_now_ns()) / 1'000'000;
    if (left_ms <= 0) return core::Error{fmt::format("QMP: timed out {}", what)};
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, int(left_ms));
    if (n > 0) return {};
    if (n < 0 && errno != EINTR) return core::Error{fmt::format("QMP: poll while {}: {}", what, strerror(errno))};
  }
}

}  // namespace

core::Result<QmpClient> QmpClient::connect(const std::string& socket_path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path)
    return core::Error{fmt::format("QMP socket path '{}' is longer than {} bytes", socket_path, sizeof addr.sun_path - 1)};
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  core::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return core::Error{fmt::format("QMP: socket(): {}", strerror(errno))};
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return core::Error{fmt::format("QMP: cannot connect to {}: {}", socket_path, strerror(errno))};

  QmpClient client(std::move(fd), timeout);
  auto greeting = client.read_line();
  if (!greeting) return core::Error{greeting.error()};
  auto parsed = nlohmann::json::parse(*greeting, nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("QMP"))
    return core::Error{fmt::format("QMP: {} did not greet like QEMU: '{}'", socket_path, greeting->substr(0, 200))};
  if (core::Status s = client.send(R"({"execute":"qmp_capabilities"})"); !s) return core::Error{s.error()};
  if (auto reply = client.read_reply("qmp_capabilities"); !reply) return core::Error{reply.error()};
  return client;
}

core::Result<core::UniqueFd> QmpClient::add_dbus_display_client() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return core::Error{fmt::format("QMP: socketpair(): {}", strerror(errno))};
  core::UniqueFd ours(pair[0]), theirs(pair[1]);
  static std::atomic<unsigned> counter{0};
  const std::string fdname = fmt::format("vdistream-dbus-{}", counter++);

  nlohmann::json getfd = {{"execute", "getfd"}, {"arguments", {{"fdname", fdname}}}};
  if (core::Status s = send(getfd.dump(), theirs.get()); !s) return core::Error{s.error()};
  if (auto reply = read_reply("getfd"); !reply) return core::Error{reply.error()};
  theirs.reset();  // QEMU holds its own copy now

  nlohmann::json add = {{"execute", "add_client"}, {"arguments", {{"protocol", "@dbus-display"}, {"fdname", fdname}}}};
  if (core::Status s = send(add.dump()); !s) return core::Error{s.error()};
  if (auto reply = read_reply("add_client"); !reply) return core::Error{reply.error()};
  return ours;
}

core::Status QmpClient::send(const std::string& json, int fd_to_pass) {
  std::string line = json + "\r\n";
  iovec iov{line.data(), line.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd_to_pass >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd_to_pass, sizeof(int));
  }
  const int64_t deadline = core::monotonic_now_ns() + int64_t(timeout_.count()) * 1'000'000;
  if (core::Status s = wait_ready(fd_.get(), POLLOUT, deadline, "sending a command"); !s) return s;
  ssize_t sent;
  do sent = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  // QMP commands are far smaller than a socket buffer: one sendmsg carries them whole.
  if (sent != ssize_t(line.size()))
    return core::Error{fmt::format("QMP: sending {} bytes failed: {}", line.size(), sent < 0 ? strerror(errno) : "short write")};
  return {};
}

core::Result<std::string> QmpClient::read_line() {
  const int64_t deadline = core::monotonic_now_ns() + int64_t(timeout_.count()) * 1'000'000;
  for (;;) {
    if (size_t eol = buffered_.find('\n'); eol != std::string::npos) {
      std::string line = buffered_.substr(0, eol);
      buffered_.erase(0, eol + 1);
      return line;
    }
    if (buffered_.size() > kMaxLine) return core::Error{"QMP: a message longer than 1 MiB"};
    if (core::Status s = wait_ready(fd_.get(), POLLIN, deadline, "waiting for QEMU's answer"); !s)
      return core::Error{s.error()};
    char chunk[4096];
    ssize_t n = recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n == 0) return core::Error{"QMP: QEMU closed the monitor connection"};
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return core::Error{fmt::format("QMP: read: {}", strerror(errno))};
    }
    buffered_.append(chunk, size_t(n));
  }
}

core::Result<nlohmann::json> QmpClient::read_reply(const std::string& command) {
  for (;;) {
    auto line = read_line();
    if (!line) return core::Error{line.error()};
    auto message = nlohmann::json::parse(*line, nullptr, false);
    if (message.is_discarded() || !message.is_object())
      return core::Error{fmt::format("QMP: '{}' answered with something that is not JSON: '{}'", command,
                                     line->substr(0, 200))};
    if (message.contains("event")) continue;
    if (message.contains("error")) {
      std::string desc = message["error"].value("desc", message["error"].dump());
      return core::Error{fmt::format("QMP: '{}' failed: {}", command, desc)};
    }
    if (message.contains("return")) return message["return"];
  }
}

}  // namespace vdistream::capture::qemu
