// A frame is one refresh of the VM's display, not one message from QEMU. At each refresh QEMU
// scans the guest's framebuffer top to bottom and sends an Update (or UpdateMap) for each dirty
// band as the scan reaches its end; then nothing until the next refresh, about 30 ms later.
// There is no end-of-refresh message, and the bands of one scan are not back to back: measured
// with the project's test guest, 0.1–1 ms apart for UpdateMap (QEMU 10), 1–1.5 ms (p99 4 ms) for
// Update by value (QEMU 7.2, 720p), where QEMU converts and copies each band before sending it.
// A listener that handed each band on as soon as it was idle made 1.9 frames per guest frame.
//
// So the assembler merges what arrives into one pending frame and hands it on once the display
// has been quiet for a while: a period learnt from the gaps seen inside refreshes (gaps under
// kIntraRefreshNs), 1.5 × their 90th percentile, between kMinQuietNs and kMaxQuietNs. That is
// the latency it adds to a refresh's last band; a refresh is never held longer than that after
// its last message, and bytes still unread on the socket (FIONREAD) keep it waiting.
//
// Runs on the listener's thread; the context is its thread-default context at construction.
#pragma once

#include <glib.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>

#include "core/damage.hpp"
#include "core/frame.hpp"

namespace vdistream::capture::qemu {

struct AssemblerStats {
  uint64_t frames = 0;     // handed on
  uint64_t messages = 0;   // display messages that contributed damage (several per frame when merged)
  uint64_t unchanged = 0;  // pending frames dropped because nothing in them had changed
  int64_t quiet_ns = 0;    // the quiet period now in use
};

class FrameAssembler {
 public:
  static constexpr int64_t kIntraRefreshNs = 10'000'000;  // refreshes are 30 ms apart (QEMU's default)
  static constexpr int64_t kMinQuietNs = 500'000, kMaxQuietNs = 6'000'000;
  static constexpr int64_t kInitialQuietNs = 2'000'000;

  using Emit = std::function<void(core::Frame)>;
  // `socket` is the listener's end of the connection (read only for FIONREAD; not owned).
  FrameAssembler(int socket, Emit emit);
  ~FrameAssembler();
  FrameAssembler(const FrameAssembler&) = delete;
  FrameAssembler& operator=(const FrameAssembler&) = delete;

  // The pending frame's tile mask for `buffer`, to set changed tiles in (16×16 grid over the
  // buffer). A different buffer than the pending one drops what was pending: a new scanout
  // brings its whole picture.
  core::TileMask& tiles(const core::FrameBufferPtr& buffer);
  // Adds a rectangle to the pending frame of `buffer` (same rule); `exact` false when the source
  // only knows that the rectangle may have changed.
  void add(const core::FrameBufferPtr& buffer, const core::Rect& rect, bool exact);
  // A display message (scanout or update) was taken: learns the gap since the previous one and
  // hands the pending frame on once the display has been quiet for the learnt period.
  void note_message();
  // Now, without waiting (UpdateDMABUF: QEMU holds the guest until the frame is taken).
  void flush();
  // The display went away (Disable, a refused scanout): nothing pending is handed on.
  void drop();

  bool pending() const { return buffer_ != nullptr; }

  // Any thread.
  AssemblerStats stats() const {
    return {frames_.load(std::memory_order_relaxed), messages_.load(std::memory_order_relaxed),
            unchanged_.load(std::memory_order_relaxed), quiet_ns_.load(std::memory_order_relaxed)};
  }

 private:
  static gboolean on_quiet(gpointer self);
  void arm(int64_t delay_ns);
  void learn_gap(int64_t gap_ns);
  bool bytes_waiting() const;

  int socket_;
  Emit emit_;
  GMainContext* context_;
  GSource* timer_ = nullptr;  // dispatches at its ready time; armed while a frame is pending

  core::FrameBufferPtr buffer_;  // of the pending frame; null when nothing is pending
  core::TileMask tiles_;
  core::DamageRegion rects_;
  bool exact_ = true;
  uint64_t sequence_ = 0;

  int64_t last_message_ns_ = 0;
  std::array<int64_t, 32> gaps_{};  // the latest gaps inside refreshes, a ring
  size_t gap_count_ = 0;

  std::atomic<uint64_t> frames_{0}, messages_{0}, unchanged_{0};
  std::atomic<int64_t> quiet_ns_{kInitialQuietNs};
};

}  // namespace vdistream::capture::qemu
