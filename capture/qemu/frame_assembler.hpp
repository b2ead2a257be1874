// A frame is one refresh of the VM's display, not one message from QEMU. QEMU sends an Update (or
// UpdateMap) per dirty band at each refresh, back to back, and then nothing until the next
// refresh (about 30 ms later); there is no end-of-refresh message. The assembler merges what
// arrives into one pending frame and hands it on once the listener has nothing more to read: an
// idle source on the listener's context, below the priority at which GDBus dispatches incoming
// calls, so it runs only after every call already received has been handled, and only when no
// further bytes wait on the socket (FIONREAD). Nothing waits on a timer in the usual case; a
// short fallback timer flushes only when bytes sat on the socket and brought no call of ours.
//
// Runs on the listener's thread; the context is its thread-default context at construction.
#pragma once

#include <glib.h>

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
  uint64_t waits = 0;      // flushes put off because more bytes were on their way
};

class FrameAssembler {
 public:
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
  // One display message contributed to the pending frame (for the statistics).
  void count_message() { messages_.fetch_add(1, std::memory_order_relaxed); }

  // Any call was handled: hand the pending frame on once nothing more is to be read.
  void message_handled();
  // Now, without waiting (UpdateDMABUF: QEMU holds the guest until the frame is taken).
  void flush();
  // The display went away (Disable, a refused scanout): nothing pending is handed on.
  void drop();

  // Any thread.
  AssemblerStats stats() const {
    return {frames_.load(std::memory_order_relaxed), messages_.load(std::memory_order_relaxed),
            unchanged_.load(std::memory_order_relaxed), waits_.load(std::memory_order_relaxed)};
  }

 private:
  static gboolean on_idle(gpointer self);
  static gboolean on_fallback(gpointer self);
  void arm_idle();
  void cancel_sources();
  bool bytes_waiting() const;

  int socket_;
  Emit emit_;
  GMainContext* context_;
  GSource* idle_ = nullptr;
  GSource* fallback_ = nullptr;

  core::FrameBufferPtr buffer_;  // of the pending frame; null when nothing is pending
  core::TileMask tiles_;
  core::DamageRegion rects_;
  bool exact_ = true;
  uint64_t sequence_ = 0;
  std::atomic<uint64_t> frames_{0}, messages_{0}, unchanged_{0}, waits_{0};
};

}  // namespace vdistream::capture::qemu
