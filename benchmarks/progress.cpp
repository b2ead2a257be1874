#include "benchmarks/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "core/clock.hpp"

namespace vdistream::bench {

Progress::Progress(uint64_t total_units) : total_(std::max<uint64_t>(1, total_units)), tty_(isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() { clear(); }

void Progress::update(uint64_t done, const std::string& what) {
  if (!tty_) return;
  const int64_t now = core::monotonic_now_ns();
  if (drawn_ && now - last_draw_ns_ < 100'000'000) return;  // 10 redraws a second at most
  last_draw_ns_ = now;
  constexpr int kWidth = 30;
  const double fraction = std::min(1.0, double(done) / double(total_));
  const int filled = int(fraction * kWidth);
  fmt::print(stderr, "\r\033[K[{}{}] {:3.0f}% {}", std::string(size_t(filled), '#'), std::string(size_t(kWidth - filled), '.'),
             fraction * 100, what);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish_step(const std::string& what) {
  if (tty_) return;
  fmt::print(stderr, "done: {}\n", what);
}

void Progress::clear() {
  if (!tty_ || !drawn_) return;
  fmt::print(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace vdistream::bench
