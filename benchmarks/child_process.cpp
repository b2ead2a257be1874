#include "benchmarks/child_process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "core/clock.hpp"

extern char** environ;

namespace vdistream::bench {

core::Result<ChildProcess> ChildProcess::spawn(const Spec& spec) {
  if (spec.argv.empty()) return core::Error{"cannot start a program without a path"};
  // Built before fork(): the child only makes async-signal-safe calls.
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int log_flags = O_WRONLY | O_CREAT | O_CLOEXEC | (spec.append_log ? O_APPEND : O_TRUNC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return core::Error{fmt::format("cannot start {}: fork failed: {}", spec.argv[0], std::strerror(errno))};
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    const int log = spec.log_path.empty() ? -1 : open(spec.log_path.c_str(), log_flags, 0600);
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, 0);
    const int out = spec.stdout_fd >= 0 ? spec.stdout_fd : log, err = spec.stderr_fd >= 0 ? spec.stderr_fd : log;
    if (out >= 0) dup2(out, 1);
    if (err >= 0) dup2(err, 2);
    if (spec.pass_as_fd3 == 3) fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep FD_CLOEXEC
    else if (spec.pass_as_fd3 >= 0) dup2(spec.pass_as_fd3, 3);
    if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here: whichever runs first, the group exists before a kill
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
    exited_ = std::exchange(other.exited_, false);
    status_ = other.status_;
  }
  return *this;
}

bool ChildProcess::running() {
  if (pid_ <= 0 || exited_) return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
  return !exited_;
}

std::string ChildProcess::exit_description() const {
  if (!exited_) return pid_ > 0 ? "is running" : "was not started";
  if (WIFEXITED(status_)) return fmt::format("exited with status {}", WEXITSTATUS(status_));
  if (WIFSIGNALED(status_)) return fmt::format("was killed by signal {}", WTERMSIG(status_));
  return "exited";
}

std::optional<int> ChildProcess::exit_status() const {
  if (exited_ && WIFEXITED(status_)) return WEXITSTATUS(status_);
  return std::nullopt;
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  if (!exited_) {
    kill(-pid_, grace.count() > 0 ? SIGTERM : SIGKILL);
    const int64_t deadline = core::monotonic_now_ns() + int64_t(grace.count()) * 1'000'000;
    while (waitpid(pid_, &status_, WNOHANG) == 0) {
      if (core::monotonic_now_ns() > deadline) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, &status_, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    exited_ = true;
  }
  kill(-pid_, SIGKILL);  // whatever of the group is still there
  pid_ = -1;
}

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

std::vector<std::string> environment(const std::vector<std::string>& drop, const std::vector<std::string>& add) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (std::find(drop.begin(), drop.end(), name) == drop.end()) env.push_back(entry);
  }
  env.insert(env.end(), add.begin(), add.end());
  return env;
}

std::string file_tail(const std::string& path, size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace vdistream::bench
