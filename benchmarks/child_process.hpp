// A program the benchmarks or tests run beside themselves (Xvfb, remote-viewer, Chromium,
// dbus-daemon, QEMU, a test's ffprobe): in its own process group, killed with this process if it dies without running
// destructors (PR_SET_PDEATHSIG), and stopped with its whole group and reaped when this goes away.
// PR_SET_PDEATHSIG fires when the *thread* that spawned the child ends: spawn from a thread that
// outlives it (the tests' and the bench's main thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace vdistream::bench {

class ChildProcess {
 public:
  struct Spec {
    std::vector<std::string> argv;  // argv[0] is the program's path
    std::vector<std::string> env;   // the whole environment
    std::string log_path;           // stdout and stderr (appended to when append_log)
    int pass_as_fd3 = -1;           // an fd the child gets as 3 (Xvfb's -displayfd)
    bool append_log = false;
    std::string cwd;                // empty: this process's
    int stdout_fd = -1, stderr_fd = -1;  // instead of the log (a pipe to read the output from)
  };

  static core::Result<ChildProcess> spawn(const Spec& spec);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess() { stop(); }

  pid_t pid() const { return pid_; }
  bool running();
  std::string exit_description() const;  // "exited with status 1", "was killed by signal 9", ...
  // The status it exited with; empty while running, or when a signal ended it.
  std::optional<int> exit_status() const;

  // SIGTERM to the group, SIGKILL when it is still there after `grace` (at once for 0), reaped.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

// The path of `name` in $PATH, or empty.
std::string find_program(const std::string& name);
// This process's environment without the variables named in `drop`, plus `add` (NAME=value each).
std::vector<std::string> environment(const std::vector<std::string>& drop, const std::vector<std::string>& add);
// The last `max_bytes` of a file (a log), empty when it cannot be read.
std::string file_tail(const std::string& path, size_t max_bytes);

}  // namespace vdistream::bench
