// Debian's Chromium, headless, opening a desktop's page for the webrtc subcommand: its own
// process group, a throw-away profile in a temporary directory (removed afterwards), and killed
// with its helpers when this goes away, or when this process dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace vdistream::bench {

class ChromiumViewer {
 public:
  static constexpr const char* kPath = "/usr/bin/chromium";
  struct Options {
    std::string url;  // a loopback address: the page, its WebSocket and ICE stay on 127.0.0.1
    int width = 1280, height = 720;
  };
  static bool available();
  static core::Result<std::unique_ptr<ChromiumViewer>> launch(const Options& options);
  ~ChromiumViewer();  // close()
  ChromiumViewer(const ChromiumViewer&) = delete;
  ChromiumViewer& operator=(const ChromiumViewer&) = delete;

  bool running();
  void close();  // SIGTERM to the group, SIGKILL after 3 s, reaped; idempotent
  // The last lines Chromium wrote (for an error message when the page never reported).
  std::string log_tail(size_t max_bytes = 2000) const;

 private:
  ChromiumViewer() = default;
  static std::vector<std::string> arguments(const std::string& profile_dir, const Options& options);
  std::string dir_;  // profile and log; removed by the destructor
  pid_t pid_ = -1;
};

}  // namespace vdistream::bench
