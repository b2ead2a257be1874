#include "benchmarks/clients/chromium.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace vdistream::bench {

bool Chromium::available() { return access(kPath, X_OK) == 0; }

// The flags of reference/webrtc.md, plus what keeps a headless page decoding and painting.
std::vector<std::string> Chromium::arguments(const std::string& profile_dir, const Options& o) {
  std::vector<std::string> argv = {kPath,
                                   "--headless=new",
                                   "--no-sandbox",
                                   "--autoplay-policy=no-user-gesture-required",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--disable-default-apps",
                                   "--disable-extensions",
                                   "--mute-audio",
                                   "--disable-dev-shm-usage",
                                   // Host candidates as addresses, not mDNS names libnice cannot resolve.
                                   "--disable-features=WebRtcHideLocalIpsWithMdns",
                                   // Keep painting and decoding while nobody looks at the (headless) window.
                                   "--disable-background-timer-throttling",
                                   "--disable-renderer-backgrounding",
                                   "--disable-backgrounding-occluded-windows",
                                   fmt::format("--window-size={},{}", o.width, o.height),
                                   "--user-data-dir=" + profile_dir};
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  argv.push_back(o.url);
  if (!o.netns.empty()) argv.insert(argv.begin(), {"/usr/sbin/ip", "netns", "exec", o.netns});
  return argv;
}

core::Result<std::unique_ptr<Chromium>> Chromium::launch(const Options& options) {
  if (!available()) {
    return core::Error{fmt::format("{} is not installed (or not executable): measured with Debian's Chromium "
                                   "(apt-get install chromium)",
                                   kPath)};
  }
  const bool loopback = options.url.rfind("http://127.0.0.1:", 0) == 0 || options.url.rfind("https://127.0.0.1:", 0) == 0;
  if (!loopback && options.netns.empty())
    return core::Error{"Chromium only opens pages on 127.0.0.1 here (or inside a test's network namespace), not " +
                       options.url};
  std::unique_ptr<Chromium> browser(new Chromium());
  if (browser->dir_.path().empty())
    return core::Error{fmt::format("cannot create a profile directory: {}", std::strerror(errno))};
  browser->log_path_ = browser->dir_.file("chromium.log");
  if (options.allow_clipboard) {
    // Read at start-up from the profile's Default directory; 1 is CONTENT_SETTING_ALLOW.
    const std::string preferences = browser->dir_.file("profile/Default/Preferences");
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(preferences).parent_path(), ec);
    std::ofstream out(preferences);
    out << R"({"profile":{"default_content_setting_values":{"clipboard":1}}})";
    out.close();
    if (ec || !out) return core::Error{fmt::format("cannot write the profile's clipboard permission to {}", preferences)};
  }
  auto child = ChildProcess::spawn(
      {arguments(browser->dir_.file("profile"), options), environment({}, {}), browser->log_path_});
  if (!child) return core::Error{child.error()};
  browser->process_ = std::move(*child);
  return browser;
}

Chromium::~Chromium() { close(); }

bool Chromium::running() {
  if (process_.running()) return true;
  process_.stop();  // its helpers, left behind in the group
  return false;
}

void Chromium::close() { process_.stop(std::chrono::seconds(3)); }

std::string Chromium::log_tail(size_t max_bytes) const { return file_tail(log_path_, max_bytes); }

}  // namespace vdistream::bench
