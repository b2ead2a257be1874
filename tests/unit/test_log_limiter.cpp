// core::LogLimiter: a line a peer can repeat at its own pace reaches the log a bounded number of
// times, and the next line let through counts what was held back.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "core/log.hpp"

using namespace vdistream;

TEST_CASE("a limited line is let through `burst` times per period, then counted until the next period", "[log]") {
  core::LogLimiter limiter(3, 60);
  const int64_t s = 1'000'000'000;
  uint64_t held = 99;
  for (int i = 0; i < 3; ++i) {
    CHECK(limiter.allow(10 * s + i, held));
    CHECK(held == 0);
  }
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(limiter.allow(11 * s + i, held));
  CHECK_FALSE(limiter.allow(69 * s, held));  // still inside the minute that began at 10 s
  REQUIRE(limiter.allow(70 * s, held));      // a new minute: let through, saying how many were not
  CHECK(held == 1001);
  CHECK(core::held_back(held) == " (1001 more like it not logged)");
  CHECK(limiter.allow(70 * s + 1, held));
  CHECK(held == 0);
  CHECK(core::held_back(0).empty());
}

TEST_CASE("a log limiter shared by threads lets exactly `burst` lines through in a period", "[log]") {
  core::LogLimiter limiter(10, 3600);  // one period covers the whole test
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        uint64_t held = 0;
        if (limiter.allow(held)) ++allowed;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(allowed == 10);
}
