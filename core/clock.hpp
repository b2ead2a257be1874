// One monotonic clock for every timestamp, and a seam so schedulers can be tested without sleeping.
#pragma once

#include <time.h>

#include <cstdint>

namespace vdistream::core {

// CLOCK_MONOTONIC in nanoseconds: the clock of every frame timestamp in the process.
inline int64_t monotonic_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// CPU time of the whole process (all threads) and of the calling thread, in nanoseconds.
inline int64_t process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
inline int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;
};

class MonotonicClock final : public Clock {
 public:
  int64_t now_ns() const override { return monotonic_now_ns(); }
  static const MonotonicClock& instance() {
    static const MonotonicClock clock;
    return clock;
  }
};

// A clock a test moves by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 0) : now_(start_ns) {}
  int64_t now_ns() const override { return now_; }
  void advance_ns(int64_t d) { now_ += d; }
  void set_ns(int64_t t) { now_ = t; }

 private:
  int64_t now_;
};

}  // namespace vdistream::core
