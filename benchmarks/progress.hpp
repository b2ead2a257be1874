// A progress bar on stderr while a subcommand runs (only when stderr is a terminal; otherwise one
// line per finished step, so logs stay readable).
#pragma once

#include <cstdint>
#include <string>

namespace vdistream::bench {

class Progress {
 public:
  explicit Progress(uint64_t total_units);
  ~Progress();
  // `done` units of the total are finished; `what` says what is running now.
  void update(uint64_t done, const std::string& what);
  void finish_step(const std::string& what);  // a configuration finished
  void clear();

 private:
  uint64_t total_;
  bool tty_;
  int64_t last_draw_ns_ = 0;
  bool drawn_ = false;
};

}  // namespace vdistream::bench
