// The machine's wall clock against the monotonic one. Browser pages report times on the wall
// clock (performance.timeOrigin + t, CLOCK_REALTIME in ms); the host stamps frames on
// CLOCK_MONOTONIC (core::monotonic_now_ns()). Both subcommands that read a page's reports map
// them with this offset.
#pragma once

#include <time.h>

#include <climits>
#include <cstdint>

namespace vdistream::bench {

// CLOCK_REALTIME − CLOCK_MONOTONIC in ns: the smallest bracket of a few tries, so a preemption
// between the two reads does not skew it.
inline int64_t realtime_minus_monotonic_ns() {
  auto ns = [](clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  };
  int64_t best_width = INT64_MAX, offset = 0;
  for (int i = 0; i < 16; ++i) {
    const int64_t m0 = ns(CLOCK_MONOTONIC), r = ns(CLOCK_REALTIME), m1 = ns(CLOCK_MONOTONIC);
    if (m1 - m0 < best_width) best_width = m1 - m0, offset = r - (m0 + (m1 - m0) / 2);
  }
  return offset;
}

// A page's wall-clock time in ms as a monotonic time in ns, with an offset from above.
inline int64_t wall_ms_to_monotonic_ns(double wall_ms, int64_t realtime_minus_monotonic) {
  return int64_t(wall_ms * 1e6) - realtime_minus_monotonic;
}

}  // namespace vdistream::bench
