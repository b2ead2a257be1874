#include "benchmarks/vdistreamd_child.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "core/clock.hpp"
#include "core/unique_fd.hpp"

#ifndef VDISTREAMD_PATH
#define VDISTREAMD_PATH ""
#endif

namespace vdistream::bench {

namespace {

using namespace std::chrono_literals;

std::string random_hex(int bytes) {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < bytes; ++i) out += fmt::format("{:02x}", rd() & 0xff);
  return out;
}

// A TOML basic string.
std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

core::Status write_private_file(const std::string& path, const std::string& text) {
  const core::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd || write(fd.get(), text.data(), text.size()) != ssize_t(text.size()))
    return core::Error{fmt::format("cannot write {}: {}", path, std::strerror(errno))};
  return {};
}

bool executable(const std::string& path) { return !path.empty() && access(path.c_str(), X_OK) == 0; }

}  // namespace

int free_loopback_port() {
  const core::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return 0;
  return ntohs(addr.sin_port);
}

std::string VdistreamdChild::default_binary() {
  if (executable(VDISTREAMD_PATH)) return VDISTREAMD_PATH;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& candidate : {self.parent_path() / "vdistreamd", self.parent_path().parent_path() / "service" / "vdistreamd"})
      if (executable(candidate.string())) return candidate.string();
  }
  return find_program("vdistreamd");
}

core::Result<std::unique_ptr<VdistreamdChild>> VdistreamdChild::start(const VdistreamdOptions& o,
                                                                      std::chrono::milliseconds limit) {
  if (!executable(o.binary))
    return core::Error{o.binary.empty() ? std::string("vdistreamd was not found (build it, or give --vdistreamd PATH)")
                                        : fmt::format("vdistreamd at '{}' is not an executable file", o.binary)};
  // The port is free when picked, but something else may listen on it before vdistreamd does (a
  // test's server beside it, a browser's): vdistreamd then exits with "Address already in use",
  // and meanwhile that other server may be the one answering. So an answer other than 200 is not
  // final while vdistreamd runs, and a taken port means another port.
  constexpr int kAttempts = 3;
  std::string why;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto started = start_once(o, limit);
    if (started) return started;
    why = started.error();
    if (why.find("Address already in use") == std::string::npos) break;
  }
  return core::Error{why};
}

core::Result<std::unique_ptr<VdistreamdChild>> VdistreamdChild::start_once(const VdistreamdOptions& o,
                                                                           std::chrono::milliseconds limit) {
  std::unique_ptr<VdistreamdChild> s(new VdistreamdChild());
  if (s->dir_.path().empty()) return core::Error{fmt::format("cannot create a private directory: {}", std::strerror(errno))};
  s->port_ = free_loopback_port();
  if (!s->port_) return core::Error{"no free TCP port on 127.0.0.1 for vdistreamd's HTTP server"};
  s->token_ = random_hex(16);
  s->ticket_ = random_hex(8);
  s->options_ = o;
  if (auto ok = write_private_file(s->dir_.file("api.token"), s->token_ + "\n"); !ok) return core::Error{ok.error()};
  if (auto ok = write_private_file(s->dir_.file("spice.ticket"), s->ticket_ + "\n"); !ok) return core::Error{ok.error()};
  s->config_ = s->configuration(o.more_desktops);
  const std::string config_path = s->dir_.file("vdistreamd.toml");
  if (auto ok = write_private_file(config_path, s->config_); !ok) return core::Error{ok.error()};

  auto child = ChildProcess::spawn({{o.binary, "--config", config_path}, environment({}, {}), s->log_path()});
  if (!child) return core::Error{child.error()};
  s->process_ = std::move(*child);
  s->api_ = std::make_unique<HttpClient>(fmt::format("http://127.0.0.1:{}", s->port_), s->token_, 5s);

  const int64_t deadline = core::monotonic_now_ns() + std::chrono::nanoseconds(limit).count();
  std::string last = "no answer";
  for (;;) {
    if (!s->process_.running())
      return core::Error{fmt::format("vdistreamd {} at start:\n{}", s->process_.exit_description(), s->log_tail())};
    auto reply = s->api_->get("/api/desktops");
    if (reply && reply->status == 200) break;
    if (reply && reply->status != 0) last = fmt::format("HTTP {}: {}", reply->status, reply->body);
    if (core::monotonic_now_ns() > deadline)
      return core::Error{fmt::format("vdistreamd's API did not answer on 127.0.0.1:{} within {} s (last: {}):\n{}",
                                     s->port_, std::chrono::duration_cast<std::chrono::seconds>(limit).count(), last,
                                     s->log_tail())};
    std::this_thread::sleep_for(100ms);
  }
  return s;
}

std::string VdistreamdChild::configuration(const std::vector<DesktopSpec>& more) const {
  std::string text = fmt::format(
      "# Written by vdistream-bench.\n"
      "[service]\nlog_level = \"info\"\n\n"
      "[http]\nlisten = \"127.0.0.1:{}\"\ntoken_file = {}\n",
      port_, toml_string(dir_.file("api.token")));
  std::vector<DesktopSpec> desktops;
  if (!options_.source.empty()) desktops.push_back({kDesktop, options_.source});
  desktops.insert(desktops.end(), more.begin(), more.end());
  for (const auto& d : desktops)
    text += fmt::format(
        "\n[[desktop]]\nname = {}\nsource = {}\nspice = {}\nspice_ticket_file = {}\nspice_mode = {}\nwebrtc = true\n",
        toml_string(d.name), toml_string(d.source), toml_string("unix:" + spice_socket(d.name)),
        toml_string(dir_.file("spice.ticket")), toml_string(options_.spice_mode));
  return text;
}

core::Status VdistreamdChild::reload(const std::vector<DesktopSpec>& more_desktops) {
  config_ = configuration(more_desktops);
  if (auto ok = write_private_file(dir_.file("vdistreamd.toml"), config_); !ok) return ok;
  if (!process_.running()) return core::Error{fmt::format("vdistreamd {}:\n{}", process_.exit_description(), log_tail())};
  if (kill(process_.pid(), SIGHUP) != 0) return core::Error{fmt::format("SIGHUP to vdistreamd: {}", std::strerror(errno))};
  return {};
}

std::string VdistreamdChild::spice_socket(const std::string& desktop) const {
  return dir_.file(desktop == kDesktop ? std::string("vdistream-spice.sock") : "spice-" + desktop + ".sock");
}

VdistreamdChild::~VdistreamdChild() {
  api_.reset();
  process_.stop(std::chrono::seconds(5));  // SIGTERM: it stops its desktops cleanly
}

core::Status VdistreamdChild::wait_capturing(std::chrono::milliseconds limit, const std::string& desktop) {
  const int64_t deadline = core::monotonic_now_ns() + std::chrono::nanoseconds(limit).count();
  std::string last = "no answer";
  for (;;) {
    if (!process_.running()) return core::Error{fmt::format("vdistreamd {}:\n{}", process_.exit_description(), log_tail())};
    auto status = desktop_status(desktop);
    if (status) {
      const auto& j = *status;
      // A VM's capture counts its frames; a synthetic source has no capture section.
      const uint64_t frames = j.contains("capture") && j["capture"].is_object() ? j["capture"].value("frames", uint64_t(0))
                              : j.contains("frames") && j["frames"].is_object() ? j["frames"].value("captured", uint64_t(0))
                                                                                 : 0;
      if (j.value("state", "") == "connected" && frames > 0) return {};
      last = fmt::format("state {} ({}), {} frames captured", j.value("state", "?"), j.value("state_reason", ""), frames);
    } else {
      last = status.error();
    }
    if (core::monotonic_now_ns() > deadline)
      return core::Error{fmt::format("vdistreamd's desktop '{}' did not capture within {} s: {}\n{}", desktop,
                                     std::chrono::duration_cast<std::chrono::seconds>(limit).count(), last, log_tail())};
    std::this_thread::sleep_for(200ms);
  }
}

core::Result<nlohmann::json> VdistreamdChild::desktop_status(const std::string& desktop) {
  return api_->get_json(fmt::format("/api/desktops/{}", desktop));
}

std::string VdistreamdChild::page_url(const std::string& desktop) const {
  return fmt::format("http://127.0.0.1:{}/desktops/{}/?token={}", port_, desktop, token_);
}

std::string VdistreamdChild::log_tail(size_t max_bytes) const { return file_tail(log_path(), max_bytes); }

}  // namespace vdistream::bench
