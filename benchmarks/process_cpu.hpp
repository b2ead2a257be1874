// CPU time a process has used so far (all its threads, user + system), from /proc/PID/stat:
// the vm subcommand's "vdistreamd %" and "QEMU %" are deltas of it over a leg.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace vdistream::bench {

// Seconds of CPU, or nothing when the process is gone or its stat line does not parse.
inline std::optional<double> process_cpu_seconds(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: fields count from the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(line.substr(close + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 13; ++i) in >> field;  // state .. cmajflt
  if (!(in >> utime >> stime)) return std::nullopt;  // fields 14 and 15, in clock ticks
  const long ticks = sysconf(_SC_CLK_TCK);
  return double(utime + stime) / double(ticks > 0 ? ticks : 100);
}

// The 1-, 5- and 15-minute load averages.
inline std::string load_average() {
  std::ifstream f("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  f >> a >> b >> c;
  std::ostringstream out;
  out << a << " " << b << " " << c;
  return out.str();
}

}  // namespace vdistream::bench
