#include "capture/qemu/frame_assembler.hpp"

#include <sys/ioctl.h>

#include <algorithm>

#include "core/clock.hpp"

namespace vdistream::capture::qemu {

namespace {

constexpr int32_t kTile = 16;
// Bytes unread on the socket: another message is on its way; look again this much later.
constexpr int64_t kRecheckNs = 300'000;

// A source that dispatches at its ready time (GLib's timeouts count in whole milliseconds).
gboolean dispatch_at_ready_time(GSource*, GSourceFunc callback, gpointer data) { return callback(data); }
GSourceFuncs kTimerFuncs = {nullptr, nullptr, &dispatch_at_ready_time, nullptr, nullptr, nullptr};

}  // namespace

FrameAssembler::FrameAssembler(int socket, Emit emit)
    : socket_(socket), emit_(std::move(emit)), context_(g_main_context_ref_thread_default()) {}

FrameAssembler::~FrameAssembler() {
  if (timer_) {
    g_source_destroy(timer_);
    g_source_unref(timer_);
  }
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

void FrameAssembler::note_message() {
  messages_.fetch_add(1, std::memory_order_relaxed);
  const int64_t now = core::monotonic_now_ns();
  if (last_message_ns_ > 0) learn_gap(now - last_message_ns_);
  last_message_ns_ = now;
  if (buffer_) arm(quiet_ns_.load(std::memory_order_relaxed));
}

void FrameAssembler::learn_gap(int64_t gap_ns) {
  if (gap_ns <= 0 || gap_ns >= kIntraRefreshNs) return;  // the next refresh, not the same one
  gaps_[gap_count_++ % gaps_.size()] = gap_ns;
  const size_t n = std::min(gap_count_, gaps_.size());
  if (n < 8) return;  // too few to say; keep the initial period
  std::array<int64_t, 32> sorted = gaps_;
  std::sort(sorted.begin(), sorted.begin() + ptrdiff_t(n));
  const int64_t p90 = sorted[std::min(n - 1, n * 9 / 10)];
  quiet_ns_.store(std::clamp(p90 * 3 / 2, kMinQuietNs, kMaxQuietNs), std::memory_order_relaxed);
}

void FrameAssembler::arm(int64_t delay_ns) {
  if (!timer_) {
    timer_ = g_source_new(&kTimerFuncs, sizeof(GSource));
    g_source_set_callback(timer_, &FrameAssembler::on_quiet, this, nullptr);
    g_source_attach(timer_, context_);
  }
  g_source_set_ready_time(timer_, g_get_monotonic_time() + delay_ns / 1000);
}

bool FrameAssembler::bytes_waiting() const {
  int queued = 0;
  return socket_ >= 0 && ioctl(socket_, FIONREAD, &queued) == 0 && queued > 0;
}

gboolean FrameAssembler::on_quiet(gpointer data) {
  auto* self = static_cast<FrameAssembler*>(data);
  if (self->buffer_ && self->bytes_waiting()) {
    self->arm(kRecheckNs);  // its call will re-arm the quiet period anyway
    return G_SOURCE_CONTINUE;
  }
  self->flush();
  return G_SOURCE_CONTINUE;  // kept for the next frame; flush() disarmed it
}

void FrameAssembler::flush() {
  if (timer_) g_source_set_ready_time(timer_, -1);
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
  if (timer_) g_source_set_ready_time(timer_, -1);
  buffer_.reset();
  rects_.clear();
  exact_ = true;
}

}  // namespace vdistream::capture::qemu
