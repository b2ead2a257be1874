// Latest wins: between capture and encode there is a slot, not a queue. A newer frame replaces
// an older one that was not taken yet, and inherits its damage.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include "core/frame.hpp"

namespace vdistream::core {

class FrameSlot {
 public:
  // Returns true when an untaken frame was replaced (its damage merged into `frame`).
  bool put(Frame frame);

  // Waits for a frame until `deadline` (steady clock), a wake() or close(). Returns the frame,
  // or nothing on timeout, wake or close.
  std::optional<Frame> take_until(std::chrono::steady_clock::time_point deadline);
  std::optional<Frame> try_take();

  void wake();   // make a waiting take_until return now (e.g. a keyframe request)
  void close();  // wakes the taker for good
  bool closed() const;
  uint64_t replaced() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<Frame> frame_;
  bool woken_ = false;
  bool closed_ = false;
  uint64_t replaced_ = 0;
};

}  // namespace vdistream::core
