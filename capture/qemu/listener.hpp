// The org.qemu.Display1.Listener object: QEMU calls it over a peer-to-peer D-Bus connection
// (we are the client side; QEMU authenticates as the server) and it turns those calls into
// Frames, cursor shapes and cursor positions.
#pragma once

#include <gio/gio.h>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "capture/qemu/glib_ptr.hpp"
#include "capture/source.hpp"
#include "core/frame_buffer.hpp"
#include "core/log.hpp"
#include "core/mapped_buffer.hpp"
#include "core/status.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::capture::qemu {

struct ListenerConfig {
  std::string name = "qemu";  // the desktop's name, in every log line
  // Tiled (non-linear) dma-bufs need an encoder that imports them by modifier; only the hardware
  // backends can, so a build without one refuses them at the edge.
  bool accept_tiled = false;
  size_t import_cache = 4;  // dma-buf imports kept by identity (QEMU re-sends the same few)
  // Where to ask the console's size when QEMU switches modes without a Scanout (VGA text mode
  // redraws row by row). The connection must outlive the listener; none: such Updates are refused.
  struct ConsoleRef {
    GDBusConnection* connection = nullptr;
    const char* peer_name = nullptr;  // nullptr on a peer-to-peer connection
    std::string path;
  } console;
};

struct ListenerStats {
  uint64_t scanouts = 0, updates = 0;                  // pixels by value
  uint64_t dmabuf_scanouts = 0, dmabuf_updates = 0;
  uint64_t dmabuf_imports = 0, dmabuf_reused = 0;      // new FrameBuffers / cache hits by st_dev+st_ino
  uint64_t refused = 0;                                // calls answered with an error
  uint64_t frames = 0;                                 // handed to on_frame
  uint64_t bytes_written = 0;                          // pixel bytes written into memfd surfaces
  uint64_t surfaces_allocated = 0;
  std::string last_refusal;
};

class Listener {
 public:
  static constexpr const char* kObjectPath = "/org/qemu/Display1/Listener";
  static constexpr const char* kInterface = "org.qemu.Display1.Listener";

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

 private:
  Listener(const ListenerConfig& config, SourceCallbacks callbacks);

  static void on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                             GVariant* parameters, GDBusMethodInvocation* invocation, gpointer self);
  static GVariant* on_get_property(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* name,
                                   GError** error, gpointer self);
  static void on_closed(GDBusConnection*, gboolean remote_peer_vanished, GError* error, gpointer self);

  core::Status scanout(GVariant* parameters);
  core::Status update(GVariant* parameters);
  void query_console_size();
  static void on_console_size(GObject* source, GAsyncResult* result, gpointer self);
  core::Status scanout_dmabuf(GVariant* parameters, GDBusMethodInvocation* invocation);
  core::Status update_dmabuf(GVariant* parameters);
  core::Status cursor_define(GVariant* parameters);
  void mouse_set(GVariant* parameters);
  void disable();

  core::Result<core::FrameBufferPtr> import_dmabuf(core::UniqueFd fd, uint32_t width, uint32_t height, uint32_t stride,
                                                   uint32_t fourcc, uint64_t modifier);
  core::Status ensure_surface(uint32_t width, uint32_t height, uint32_t fourcc, bool& reallocated);
  void emit_frame(const core::FrameBufferPtr& buffer, const core::Rect& rect, bool exact);

  ListenerConfig config_;
  SourceCallbacks callbacks_;
  core::Logger log_;
  GDBusNodeInfoPtr node_;
  GObjectPtr<GDBusConnection> connection_;
  guint registration_ = 0;
  gulong closed_handler_ = 0;
  bool closed_ = false;
  std::string close_reason_;

  // Pixels by value go into one memfd surface per scanout size (see listener.cpp for why one).
  core::FrameBufferPtr surface_;
  std::shared_ptr<core::MappedBuffer> surface_map_;
  // The current dma-buf scanout, and recent imports by identity.
  core::FrameBufferPtr dmabuf_;
  std::list<core::FrameBufferPtr> imports_;
  bool warned_bottom_up_ = false;
  // Updates that arrived for a surface size we have not learnt yet, replayed once we have.
  std::vector<GVariantPtr> deferred_updates_;
  GObjectPtr<GCancellable> size_query_;  // in flight when set
  uint64_t sequence_ = 0;

  mutable std::mutex stats_mutex_;
  ListenerStats stats_;
};

}  // namespace vdistream::capture::qemu
