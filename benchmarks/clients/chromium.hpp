// Debian's Chromium, headless, opening a page on 127.0.0.1 (a desktop's WebRTC page; or, inside a
// test's network namespace, an address there) for the webrtc and vm subcommands and the tests: a
// ChildProcess (its own process group, killed with this process if it dies), a throw-away profile
// in a private directory removed afterwards, and killed with its helpers when this goes away.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "benchmarks/child_process.hpp"
#include "benchmarks/private_dir.hpp"
#include "core/status.hpp"

namespace vdistream::bench {

class Chromium {
 public:
  static constexpr const char* kPath = "/usr/bin/chromium";
  struct Options {
    std::string url;  // a loopback address: the page, its WebSocket and ICE stay on 127.0.0.1
    int width = 1280, height = 720;
    std::vector<std::string> extra_args;  // before the URL
    // Run inside this network namespace (`ip netns exec NAME`, as root): then the URL may be any
    // http(s) address of that namespace's (the NAT traversal test's private networks).
    std::string netns;
    // Pages may read and write the clipboard without asking, as for a user who allowed it
    // (headless Chromium otherwise refuses navigator.clipboard.writeText): the throw-away
    // profile's default content setting.
    bool allow_clipboard = false;
  };
  static bool available();
  static core::Result<std::unique_ptr<Chromium>> launch(const Options& options);
  ~Chromium();  // close()
  Chromium(const Chromium&) = delete;
  Chromium& operator=(const Chromium&) = delete;

  bool running();  // false once it exited (its helpers are then killed)
  void close();    // SIGTERM to the group, SIGKILL after 3 s, reaped; idempotent
  const std::string& log_path() const { return log_path_; }
  // The last lines Chromium wrote (for an error message when the page never reported).
  std::string log_tail(size_t max_bytes = 2000) const;

 private:
  Chromium() = default;
  static std::vector<std::string> arguments(const std::string& profile_dir, const Options& options);

  PrivateDir dir_{"vdistream-chromium"};  // profile and log
  std::string log_path_;
  ChildProcess process_;
};

}  // namespace vdistream::bench
