#include "capture/qemu/frame_assembler.hpp"

#include <sys/ioctl.h>

#include "core/clock.hpp"

namespace vdistream::capture::qemu {

namespace {

constexpr int32_t kTile = 16;
// Only when bytes waited on the socket but no call of ours followed them.
constexpr guint kFallbackMs = 2;

}  // namespace

FrameAssembler::FrameAssembler(int socket, Emit emit)
    : socket_(socket), emit_(std::move(emit)), context_(g_main_context_ref_thread_default()) {}

FrameAssembler::~FrameAssembler() {
  cancel_sources();
  g_main_context_unref(context_);
}

core::TileMask& FrameAssembler::tiles(const core::FrameBufferPtr& buffer) {
  if (buffer != buffer_) {
    buffer_ = buffer;
    tiles_ = core::TileMask(buffer->width(), buffer->height(), kTile);
    rects_.clear();
    exact_ = true;
  }
  return tiles_;
}

void FrameAssembler::add(const core::FrameBufferPtr& buffer, const core::Rect& rect, bool exact) {
  tiles(buffer);
  rects_.add(rect);
  exact_ = exact_ && exact;
}

void FrameAssembler::message_handled() {
  if (buffer_) arm_idle();
}

void FrameAssembler::arm_idle() {
  if (idle_) return;
  idle_ = g_idle_source_new();
  // Below G_PRIORITY_DEFAULT, where GDBus dispatches each received call to this context.
  g_source_set_priority(idle_, G_PRIORITY_DEFAULT_IDLE);
  g_source_set_callback(idle_, &FrameAssembler::on_idle, this, nullptr);
  g_source_attach(idle_, context_);
}

void FrameAssembler::cancel_sources() {
  for (GSource** source : {&idle_, &fallback_}) {
    if (!*source) continue;
    g_source_destroy(*source);
    g_source_unref(*source);
    *source = nullptr;
  }
}

bool FrameAssembler::bytes_waiting() const {
  int queued = 0;
  return socket_ >= 0 && ioctl(socket_, FIONREAD, &queued) == 0 && queued > 0;
}

gboolean FrameAssembler::on_idle(gpointer data) {
  auto* self = static_cast<FrameAssembler*>(data);
  g_source_unref(self->idle_);
  self->idle_ = nullptr;
  if (self->bytes_waiting()) {
    // The next message is being read: its call re-arms this. The timer covers bytes that turn
    // out not to be a call of ours.
    self->waits_.fetch_add(1, std::memory_order_relaxed);
    if (!self->fallback_) {
      self->fallback_ = g_timeout_source_new(kFallbackMs);
      g_source_set_callback(self->fallback_, &FrameAssembler::on_fallback, self, nullptr);
      g_source_attach(self->fallback_, self->context_);
    }
    return G_SOURCE_REMOVE;
  }
  self->flush();
  return G_SOURCE_REMOVE;
}

gboolean FrameAssembler::on_fallback(gpointer data) {
  auto* self = static_cast<FrameAssembler*>(data);
  g_source_unref(self->fallback_);
  self->fallback_ = nullptr;
  self->flush();
  return G_SOURCE_REMOVE;
}

void FrameAssembler::flush() {
  cancel_sources();
  if (!buffer_) return;
  core::Frame frame;
  frame.buffer = std::move(buffer_);
  buffer_.reset();
  frame.damage = std::move(rects_);
  rects_.clear();
  frame.damage.add(tiles_.to_region());
  frame.damage_exact = exact_;
  exact_ = true;
  if (frame.damage.empty()) {  // every band turned out to hold what was there already
    unchanged_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  frame.sequence = sequence_++;
  frame.timestamps.captured_ns = core::monotonic_now_ns();
  frames_.fetch_add(1, std::memory_order_relaxed);
  if (emit_) emit_(std::move(frame));
}

void FrameAssembler::drop() {
  cancel_sources();
  buffer_.reset();
  rects_.clear();
  exact_ = true;
}

}  // namespace vdistream::capture::qemu
