#include "benchmarks/chromium_viewer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace vdistream::bench {

bool ChromiumViewer::available() { return access(kPath, X_OK) == 0; }

// The flags of reference/webrtc.md, plus what keeps a headless page decoding and painting.
std::vector<std::string> ChromiumViewer::arguments(const std::string& profile_dir, const Options& o) {
  return {kPath,
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
          "--disable-background-timer-throttling",
          "--disable-renderer-backgrounding",
          "--disable-backgrounding-occluded-windows",
          fmt::format("--window-size={},{}", o.width, o.height),
          "--user-data-dir=" + profile_dir,
          o.url};
}

core::Result<std::unique_ptr<ChromiumViewer>> ChromiumViewer::launch(const Options& options) {
  if (!available()) {
    return core::Error{fmt::format("{} is not installed (or not executable): the webrtc subcommand measures with Debian's "
                                   "Chromium (apt-get install chromium)",
                                   kPath)};
  }
  if (options.url.rfind("http://127.0.0.1:", 0) != 0 && options.url.rfind("https://127.0.0.1:", 0) != 0)
    return core::Error{"the viewer only opens pages on 127.0.0.1, not " + options.url};
  std::unique_ptr<ChromiumViewer> viewer(new ChromiumViewer());
  std::string tmpl = (std::filesystem::temp_directory_path() / "vdistream-bench-chromium-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return core::Error{fmt::format("cannot create a profile directory: {}", std::strerror(errno))};
  viewer->dir_ = tmpl;
  const std::string log_path = viewer->dir_ + "/chromium.log";
  // Built before fork(): the child only calls async-signal-safe functions.
  const std::vector<std::string> argv = arguments(viewer->dir_ + "/profile", options);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) return core::Error{fmt::format("fork failed: {}", std::strerror(errno))};
  if (pid == 0) {
    setpgid(0, 0);
    // If the bench dies without its destructors, the browser goes with it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here: whichever runs first, the group exists before a kill
  viewer->pid_ = pid;
  return viewer;
}

ChromiumViewer::~ChromiumViewer() {
  close();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool ChromiumViewer::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    kill(-pid_, SIGKILL);  // helpers left behind
    pid_ = -1;
    return false;
  }
  return true;
}

void ChromiumViewer::close() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);  // whatever of the group is still there
  pid_ = -1;
}

std::string ChromiumViewer::log_tail(size_t max_bytes) const {
  std::ifstream f(dir_ + "/chromium.log", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace vdistream::bench
