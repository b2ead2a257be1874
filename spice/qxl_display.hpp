// QXL mode: a QXL instance whose primary surface is the desktop, fed with one image drawable
// per damaged rectangle (the way QEMU's ui/spice-display.c serves emulated VGA). spice-server
// compresses them and keeps the latest drawables, so a client that joins late gets the picture.
//
// Threads: on_frame() on the source's thread copies the damaged pixels (one copy, into memory
// spice-server reads) and posts the drawables to the desktop's loop thread, which owns the
// primary surface; spice-server's display worker takes them (get_command) and gives them back
// (release_resource) on its own thread, so the queue is locked.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <vector>

#include "core/frame.hpp"
#include "core/input.hpp"
#include "core/log.hpp"
#include "core/mapped_buffer.hpp"
#include "core/status.hpp"
#include "glib/loop_thread.hpp"

typedef struct QXLInstance QXLInstance;
typedef struct SpiceBaseInstance SpiceBaseInstance;
struct QXLCommandExt;
struct QXLReleaseInfoExt;
struct QXLDevInitInfo;

namespace vdistream::spice {

struct QxlResource;  // qxl_resources.hpp

struct QxlStats {
  uint64_t frames = 0;           // frames that had damage
  uint64_t drawables = 0;        // image drawables queued
  uint64_t bytes_copied = 0;     // pixel bytes copied into drawables
  uint64_t queue_overflows = 0;  // times the worker lagged and the queue became one full picture
  uint64_t primaries_created = 0;
};

class QxlDisplay {
 public:
  QxlDisplay(const core::Logger& log, glib::LoopThread& thread);
  ~QxlDisplay();  // frees every drawable spice-server still holds: destroy the server first
  QxlDisplay(const QxlDisplay&) = delete;
  QxlDisplay& operator=(const QxlDisplay&) = delete;

  SpiceBaseInstance* instance();
  // Desktop thread, right after spice_server_add_interface(instance()).
  void attached();

  // Source thread (one source: calls must not overlap). Empty damage costs nothing.
  core::Status on_frame(const core::Frame& frame);

  // Any thread: the pointer's image and position (QXL cursor commands). Kept and sent again
  // with every new primary surface.
  void set_cursor(const core::CursorShape& shape, const core::CursorPosition& at);
  void move_cursor(const core::CursorPosition& at);

  // Desktop thread: drop the primary surface (before the server goes away).
  void destroy_primary();

  QxlStats stats() const;
  int32_t width() const { return width_.load(); }
  int32_t height() const { return height_.load(); }


 private:
  using Batch = std::vector<std::unique_ptr<QxlResource>>;
  void queue(int32_t width, int32_t height, bool replace_pending, Batch& batch);  // desktop thread
  void create_primary(int32_t width, int32_t height);                            // desktop thread
  void drop_pending_locked();

  // spice-server's QXLInterface, on its display worker thread.
  static QxlDisplay* owner(QXLInstance* qxl);
  static void get_init_info(QXLInstance* qxl, QXLDevInitInfo* info);
  static int get_command(QXLInstance* qxl, QXLCommandExt* cmd);
  static int req_cmd_notification(QXLInstance* qxl);
  static int get_cursor_command(QXLInstance* qxl, QXLCommandExt* cmd);
  static int req_cursor_notification(QXLInstance* qxl);
  void queue_cursor(std::unique_ptr<QxlResource> command);  // desktop thread
  static void release_resource(QXLInstance* qxl, QXLReleaseInfoExt release);

  struct Handle;
  core::Logger log_;
  glib::LoopThread& thread_;
  std::unique_ptr<Handle> handle_;
  core::MappingCache mappings_{4};

  // Source thread.
  int32_t prepared_width_ = 0, prepared_height_ = 0;
  uint32_t next_image_id_ = 1;

  // Desktop thread.
  std::vector<uint8_t> surface_;  // the primary's memory, spice-server's canvas
  bool primary_ = false;
  std::optional<core::CursorShape> cursor_shape_;
  core::CursorPosition cursor_at_;
  uint64_t next_cursor_id_ = 1;

  std::atomic<int32_t> width_{0}, height_{0};
  mutable std::mutex mutex_;
  std::deque<QxlResource*> pending_;         // drawables not yet taken by the worker
  std::deque<QxlResource*> cursor_pending_;  // cursor commands not yet taken
  std::unordered_set<QxlResource*> live_;    // queued or held by spice-server
  std::atomic<size_t> pending_count_{0};
  QxlStats stats_;
};

}  // namespace vdistream::spice
