#include "core/frame_slot.hpp"

namespace vdistream::core {

bool FrameSlot::put(Frame frame) {
  bool replaced = false;
  {
    std::lock_guard lock(mutex_);
    if (frame_) {
      // A size change makes the new frame's damage full anyway; otherwise the pixels the old
      // frame changed must still be converted.
      if (frame_->width() == frame.width() && frame_->height() == frame.height()) frame.damage.add(frame_->damage);
      replaced = true;
      ++replaced_;
    }
    frame_ = std::move(frame);
  }
  cv_.notify_one();
  return replaced;
}

std::optional<Frame> FrameSlot::take_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, deadline, [&] { return frame_.has_value() || woken_ || closed_; });
  woken_ = false;
  std::optional<Frame> out;
  out.swap(frame_);
  return out;
}

std::optional<Frame> FrameSlot::try_take() {
  std::lock_guard lock(mutex_);
  std::optional<Frame> out;
  out.swap(frame_);
  return out;
}

void FrameSlot::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  cv_.notify_one();
}

void FrameSlot::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool FrameSlot::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

uint64_t FrameSlot::replaced() const {
  std::lock_guard lock(mutex_);
  return replaced_;
}

}  // namespace vdistream::core
