// The org.qemu.Display1.Listener object: QEMU calls it over a peer-to-peer D-Bus connection
// (we are the client side; QEMU authenticates as the server) and it turns those calls into
// Frames, cursor shapes and cursor positions.
//
// Three ways QEMU hands over the picture, each in its own file:
// - pixels by value (Scanout/Update, every QEMU): value_surface.hpp;
// - its surface shared as a memfd (ScanoutMap/UpdateMap, QEMU ≥ 9.2, offered through the
//   Interfaces property as org.qemu.Display1.Listener.Unix.Map): shared_map.hpp;
// - dma-bufs (ScanoutDMABUF/UpdateDMABUF, and ScanoutDMABUF2 from QEMU ≥ 10.1, offered as
//   org.qemu.Display1.Listener.Unix.ScanoutDMABUF2): dmabuf_scanouts.hpp.
// Band updates are refined to the 16×16 tiles that really changed, and everything QEMU sends for
// one refresh of the display becomes one frame (frame_assembler.hpp).
#pragma once

#include <gio/gio.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "capture/qemu/dmabuf_scanouts.hpp"
#include "capture/qemu/frame_assembler.hpp"
#include "capture/qemu/shared_map.hpp"
#include "capture/qemu/value_surface.hpp"
#include "capture/source.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "core/tile_diff.hpp"
#include "core/unique_fd.hpp"
#include "glib/ptr.hpp"

namespace vdistream::capture::qemu {

struct ListenerConfig {
  std::string name = "qemu";  // the desktop's name, in every log line
  // Tiled (non-linear) dma-bufs need an encoder that imports them by modifier; only the hardware
  // backends can, so a build without one refuses them at the edge.
  bool accept_tiled = false;
  size_t import_cache = 4;  // dma-buf imports kept by identity (QEMU re-sends the same few)
  // The optional listener interfaces offered to QEMU (it uses those it knows).
  bool offer_shared_map = true;  // org.qemu.Display1.Listener.Unix.Map
  bool offer_dmabuf2 = true;     // org.qemu.Display1.Listener.Unix.ScanoutDMABUF2
  // Where to ask the console's size when QEMU switches modes without a Scanout (VGA text mode
  // redraws row by row). The connection must outlive the listener; none: such Updates are refused.
  struct ConsoleRef {
    GDBusConnection* connection = nullptr;
    const char* peer_name = nullptr;  // nullptr on a peer-to-peer connection
    std::string path;
  } console;
};

struct ListenerStats {
  uint64_t scanouts = 0, updates = 0;              // pixels by value
  uint64_t map_scanouts = 0, map_updates = 0;      // QEMU's surface shared as a memfd
  uint64_t dmabuf_scanouts = 0, dmabuf_updates = 0;  // ScanoutDMABUF and ScanoutDMABUF2
  uint64_t dmabuf2_scanouts = 0;                   // of which ScanoutDMABUF2
  uint64_t dmabuf_imports = 0, dmabuf_reused = 0;  // new FrameBuffers / cache hits by st_dev+st_ino
  uint64_t refused = 0;                            // calls answered with an error
  uint64_t frames = 0;                             // handed to on_frame: one per refresh
  uint64_t display_messages = 0;                   // scanouts and updates merged into those frames
  uint64_t unchanged_refreshes = 0;                // refreshes whose bands held nothing new
  int64_t refresh_quiet_ns = 0;                    // how long the display must be quiet to end a refresh
  uint64_t pixel_bytes_received = 0;               // pixel data that crossed the socket (by value)
  uint64_t update_bytes = 0;                       // area QEMU named in updates (by value or shared), × 4
  uint64_t bytes_written = 0;                      // of it, written into the surface (changed tiles)
  uint64_t mirror_bytes = 0;                       // copied into the shared surface's mirror
  uint64_t tiles_compared = 0, tiles_changed = 0;  // damage refinement of band updates
  uint64_t surfaces_allocated = 0;
  int64_t cpu_ns = 0;  // the listener thread's CPU time in display calls (not GDBus's own reading)
  std::string scanout_kind;  // "pixels-by-value", "shared-memory" or "dma-buf"; "" before any scanout
  std::string last_refusal;
};

class Listener {
 public:
  static constexpr const char* kObjectPath = "/org/qemu/Display1/Listener";
  static constexpr const char* kInterface = "org.qemu.Display1.Listener";
  static constexpr const char* kMapInterface = "org.qemu.Display1.Listener.Unix.Map";
  static constexpr const char* kDmabuf2Interface = "org.qemu.Display1.Listener.Unix.ScanoutDMABUF2";

  // Runs the client side of the D-Bus handshake on `socket` (blocks until the peer, QEMU, has
  // authenticated), exports the Listener object and starts serving it on the calling thread's
  // thread-default main context, which the caller then iterates. Callbacks run on that thread.
  static core::Result<std::unique_ptr<Listener>> create(core::UniqueFd socket, const ListenerConfig& config,
                                                        SourceCallbacks callbacks, GCancellable* cancellable);
  ~Listener();  // on the context's thread
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // The peer hung up (QEMU quit or crashed); `close_reason()` says how.
  bool closed() const { return closed_; }
  const std::string& close_reason() const { return close_reason_; }
  ListenerStats stats() const;
  // Listener thread: display messages are waiting to become a frame (the refresh is not over).
  bool frame_pending() const { return assembler_.pending(); }

 private:
  Listener(const ListenerConfig& config, SourceCallbacks callbacks, int socket);

  static void on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                             GVariant* parameters, GDBusMethodInvocation* invocation, gpointer self);
  static GVariant* on_get_property(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* name,
                                   GError** error, gpointer self);
  static void on_closed(GDBusConnection*, gboolean remote_peer_vanished, GError* error, gpointer self);
  core::Status dispatch(std::string_view method, GVariant* parameters, GDBusMethodInvocation* invocation);

  core::Status scanout(GVariant* parameters);
  core::Status update(GVariant* parameters);
  void query_console_size();
  static void on_console_size(GObject* source, GAsyncResult* result, gpointer self);
  core::Status scanout_map(GVariant* parameters, GDBusMethodInvocation* invocation);
  core::Status update_map(GVariant* parameters);
  core::Status scanout_dmabuf(GVariant* parameters, GDBusMethodInvocation* invocation);
  core::Status scanout_dmabuf2(GVariant* parameters, GDBusMethodInvocation* invocation);
  core::Status use_dmabuf(DmabufScanout scanout, bool y0_top, bool v2);
  core::Status update_dmabuf(GVariant* parameters);
  core::Status cursor_define(GVariant* parameters);
  void mouse_set(GVariant* parameters);
  void disable();
  // Which kind of scanout is current; the others are dropped.
  void switch_to(const core::FrameBufferPtr& current);

  ListenerConfig config_;
  SourceCallbacks callbacks_;
  core::Logger log_;
  core::LogLimiter refusals_logged_;  // a peer repeats refused calls at its own pace
  glib::GDBusNodeInfoPtr node_;
  glib::GObjectPtr<GDBusConnection> connection_;
  std::vector<guint> registrations_;
  gulong closed_handler_ = 0;
  bool closed_ = false;
  std::string close_reason_;

  FrameAssembler assembler_;
  ValueSurface value_;
  SharedMap map_;
  DmabufScanouts dmabufs_;
  core::FrameBufferPtr dmabuf_;  // the current dma-buf scanout
  bool warned_bottom_up_ = false;
  // Updates that arrived for a surface size we have not learnt yet, replayed once we have.
  std::vector<glib::GVariantPtr> deferred_updates_;
  glib::GObjectPtr<GCancellable> size_query_;  // in flight when set

  mutable std::mutex stats_mutex_;
  ListenerStats stats_;
  core::TileDiffCounters tile_counters_;  // listener thread; copied into stats_ after each call
};

}  // namespace vdistream::capture::qemu
