#include "capture/qemu/listener.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>
#include <gio/gunixfdlist.h>

#include <cstring>

#include "capture/qemu/display_connection.hpp"
#include "core/clock.hpp"
#include "core/pixel_format.hpp"

namespace vdistream::capture::qemu {

namespace {

// The part of QEMU's ui/dbus-display1.xml we serve: QEMU 7.2's Listener, the Interfaces
// property later versions read, and the optional Unix interfaces of later versions.
constexpr const char* kListenerXml = R"(<node>
  <interface name="org.qemu.Display1.Listener">
    <method name="Scanout">
      <arg type="u" name="width" direction="in"/><arg type="u" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/><arg type="u" name="pixman_format" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <method name="Update">
      <arg type="i" name="x" direction="in"/><arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/><arg type="i" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/><arg type="u" name="pixman_format" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <method name="ScanoutDMABUF">
      <arg type="h" name="dmabuf" direction="in"/><arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/><arg type="u" name="stride" direction="in"/>
      <arg type="u" name="fourcc" direction="in"/><arg type="t" name="modifier" direction="in"/>
      <arg type="b" name="y0_top" direction="in"/>
    </method>
    <method name="UpdateDMABUF">
      <arg type="i" name="x" direction="in"/><arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/><arg type="i" name="height" direction="in"/>
    </method>
    <method name="Disable"/>
    <method name="MouseSet">
      <arg type="i" name="x" direction="in"/><arg type="i" name="y" direction="in"/>
      <arg type="i" name="on" direction="in"/>
    </method>
    <method name="CursorDefine">
      <arg type="i" name="width" direction="in"/><arg type="i" name="height" direction="in"/>
      <arg type="i" name="hot_x" direction="in"/><arg type="i" name="hot_y" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <property name="Interfaces" type="as" access="read"/>
  </interface>
  <interface name="org.qemu.Display1.Listener.Unix.Map">
    <method name="ScanoutMap">
      <arg type="h" name="handle" direction="in"/><arg type="u" name="offset" direction="in"/>
      <arg type="u" name="width" direction="in"/><arg type="u" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/><arg type="u" name="pixman_format" direction="in"/>
    </method>
    <method name="UpdateMap">
      <arg type="i" name="x" direction="in"/><arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/><arg type="i" name="height" direction="in"/>
    </method>
  </interface>
  <interface name="org.qemu.Display1.Listener.Unix.ScanoutDMABUF2">
    <method name="ScanoutDMABUF2">
      <arg type="ah" name="dmabuf" direction="in"/>
      <arg type="u" name="x" direction="in"/><arg type="u" name="y" direction="in"/>
      <arg type="u" name="width" direction="in"/><arg type="u" name="height" direction="in"/>
      <arg type="au" name="offset" direction="in"/><arg type="au" name="stride" direction="in"/>
      <arg type="u" name="num_planes" direction="in"/><arg type="u" name="fourcc" direction="in"/>
      <arg type="u" name="backing_width" direction="in"/><arg type="u" name="backing_height" direction="in"/>
      <arg type="t" name="modifier" direction="in"/><arg type="b" name="y0_top" direction="in"/>
    </method>
  </interface>
</node>)";

constexpr const char* kRefusedError = "org.qemu.Display1.Listener.Error.Refused";
constexpr int32_t kMaxCursorSide = 512;
constexpr size_t kMaxDeferredUpdates = 4096;

// The bytes of an `ay` argument, without copying them out of the message.
std::pair<const uint8_t*, size_t> bytes_of(GVariant* parameters, size_t index) {
  glib::GVariantPtr child(g_variant_get_child_value(parameters, index));
  gsize n = 0;
  const void* data = g_variant_get_fixed_array(child.get(), &n, 1);
  // The child shares the parameters' memory, which outlives this call.
  return {static_cast<const uint8_t*>(data), size_t(n)};
}

// Does `size` bytes of rows `stride` apart hold `height` rows of `row_bytes`?
core::Status check_pixel_data(size_t size, uint32_t stride, int64_t row_bytes, int64_t height) {
  if (int64_t(stride) < row_bytes)
    return core::Error{fmt::format("stride {} < width {} × 4 bytes per pixel", stride, row_bytes / 4)};
  const uint64_t needed = height > 0 ? uint64_t(stride) * uint64_t(height - 1) + uint64_t(row_bytes) : 0;
  if (size < needed)
    return core::Error{fmt::format("{} bytes of pixel data, {} rows of stride {} need {}", size, height, stride, needed)};
  return {};
}

// The fd a method call's handle argument names.
core::Result<core::UniqueFd> take_fd(GDBusMethodInvocation* invocation, int32_t handle) {
  GUnixFDList* fds = g_dbus_message_get_unix_fd_list(g_dbus_method_invocation_get_message(invocation));
  const int count = fds ? g_unix_fd_list_get_length(fds) : 0;
  if (handle < 0 || handle >= count)
    return core::Error{fmt::format("fd handle {} is not among the {} fds passed", handle, count)};
  glib::GErrorSlot err;
  core::UniqueFd fd(g_unix_fd_list_get(fds, handle, err.out()));
  if (!fd) return core::Error{fmt::format("taking fd {}: {}", handle, err.message())};
  return fd;
}

core::Rect whole(const core::FrameBufferPtr& buffer) { return {0, 0, buffer->width(), buffer->height()}; }

}  // namespace

Listener::Listener(const ListenerConfig& config, SourceCallbacks callbacks, int socket)
    : config_(config),
      callbacks_(std::move(callbacks)),
      log_(config.name),
      assembler_(socket, [this](core::Frame frame) {
        if (callbacks_.on_frame) callbacks_.on_frame(std::move(frame));
      }),
      value_(fmt::format("vdistream-{}-surface", config.name)),
      map_(log_),
      dmabufs_(config.accept_tiled, config.import_cache) {}

core::Result<std::unique_ptr<Listener>> Listener::create(core::UniqueFd socket, const ListenerConfig& config,
                                                         SourceCallbacks callbacks, GCancellable* cancellable) {
  // The connection owns the socket from here on; the assembler only asks it how much is unread.
  const int socket_fd = socket.get();
  std::unique_ptr<Listener> self(new Listener(config, std::move(callbacks), socket_fd));
  glib::GErrorSlot err;
  self->node_.reset(g_dbus_node_info_new_for_xml(kListenerXml, err.out()));
  if (!self->node_) return core::Error{fmt::format("listener introspection data: {}", err.message())};

  // Exported before the first message is read: QEMU reads our properties as soon as it has us.
  auto connection = open_peer_connection(std::move(socket), G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING, cancellable);
  if (!connection) return core::Error{"listener connection: " + connection.error()};
  self->connection_ = std::move(*connection);
  static const GDBusInterfaceVTable vtable = {&Listener::on_method_call, &Listener::on_get_property, nullptr, {}};
  for (GDBusInterfaceInfo** info = self->node_->interfaces; *info; ++info) {
    const std::string_view name((*info)->name);
    if ((name == kMapInterface && !config.offer_shared_map) || (name == kDmabuf2Interface && !config.offer_dmabuf2))
      continue;
    guint id = g_dbus_connection_register_object(self->connection_.get(), kObjectPath, *info, &vtable, self.get(),
                                                 nullptr, err.out());
    if (id == 0) return core::Error{fmt::format("exporting {} at {}: {}", name, kObjectPath, err.message())};
    self->registrations_.push_back(id);
  }
  self->closed_handler_ = g_signal_connect(self->connection_.get(), "closed", G_CALLBACK(&Listener::on_closed), self.get());
  g_dbus_connection_start_message_processing(self->connection_.get());
  return self;
}

Listener::~Listener() {
  if (size_query_) g_cancellable_cancel(size_query_.get());
  if (!connection_) return;
  if (closed_handler_) g_signal_handler_disconnect(connection_.get(), closed_handler_);
  for (guint id : registrations_) g_dbus_connection_unregister_object(connection_.get(), id);
  g_dbus_connection_close(connection_.get(), nullptr, nullptr, nullptr);
}

ListenerStats Listener::stats() const {
  std::lock_guard lock(stats_mutex_);
  ListenerStats s = stats_;
  const AssemblerStats a = assembler_.stats();  // frames are handed on after the call that made them
  s.frames = a.frames;
  s.display_messages = a.messages;
  s.unchanged_refreshes = a.unchanged;
  s.refresh_quiet_ns = a.quiet_ns;
  return s;
}

void Listener::on_closed(GDBusConnection*, gboolean remote_peer_vanished, GError* error, gpointer data) {
  auto* self = static_cast<Listener*>(data);
  self->closed_ = true;
  self->close_reason_ = remote_peer_vanished ? fmt::format("QEMU closed the display connection{}{}",
                                                           error ? ": " : "", error ? error->message : "")
                                             : "the display connection was closed";
}

GVariant* Listener::on_get_property(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* name,
                                    GError** error, gpointer data) {
  auto* self = static_cast<Listener*>(data);
  if (std::strcmp(name, "Interfaces") == 0) {
    std::vector<const char*> offered;
    if (self->config_.offer_shared_map) offered.push_back(kMapInterface);
    if (self->config_.offer_dmabuf2) offered.push_back(kDmabuf2Interface);
    return g_variant_new_strv(offered.data(), gssize(offered.size()));
  }
  g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", name);
  return nullptr;
}

core::Status Listener::dispatch(std::string_view name, GVariant* parameters, GDBusMethodInvocation* invocation) {
  if (name == "Update") return update(parameters);
  if (name == "UpdateMap") return update_map(parameters);
  if (name == "UpdateDMABUF") return update_dmabuf(parameters);  // the frame goes out before the reply
  if (name == "Scanout") return scanout(parameters);
  if (name == "ScanoutMap") return scanout_map(parameters, invocation);
  if (name == "ScanoutDMABUF") return scanout_dmabuf(parameters, invocation);
  if (name == "ScanoutDMABUF2") return scanout_dmabuf2(parameters, invocation);
  if (name == "CursorDefine") return cursor_define(parameters);
  if (name == "MouseSet") {
    mouse_set(parameters);
    return {};
  }
  if (name == "Disable") {
    disable();
    return {};
  }
  return core::Error{fmt::format("unknown method {}", name)};
}

void Listener::on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                              GVariant* parameters, GDBusMethodInvocation* invocation, gpointer data) {
  auto* self = static_cast<Listener*>(data);
  const std::string_view name(method);
  const int64_t cpu0 = core::thread_cpu_ns();
  const core::Status result = self->dispatch(name, parameters, invocation);
  {
    std::lock_guard lock(self->stats_mutex_);
    ListenerStats& s = self->stats_;
    s.tiles_compared = self->tile_counters_.tiles_compared;
    s.tiles_changed = self->tile_counters_.tiles_changed;
    s.dmabuf_imports = self->dmabufs_.stats().imports;
    s.dmabuf_reused = self->dmabufs_.stats().reused;
    s.cpu_ns += core::thread_cpu_ns() - cpu0;
    if (!result) {
      ++s.refused;
      s.last_refusal = fmt::format("{}: {}", name, result.error());
    }
  }
  if (result) {
    g_dbus_method_invocation_return_value(invocation, nullptr);
    return;
  }
  self->log_.warn_limited(self->refusals_logged_, "refused {}: {}", name, result.error());
  g_dbus_method_invocation_return_dbus_error(invocation, kRefusedError, result.error().c_str());
}

void Listener::switch_to(const core::FrameBufferPtr& current) {
  if (current != value_.buffer()) value_.reset();
  if (current != map_.buffer()) map_.reset();
  if (current != dmabuf_) dmabuf_.reset();
}

core::Status Listener::scanout(GVariant* parameters) {
  uint32_t width = 0, height = 0, stride = 0, pixman = 0;
  g_variant_get_child(parameters, 0, "u", &width);
  g_variant_get_child(parameters, 1, "u", &height);
  g_variant_get_child(parameters, 2, "u", &stride);
  g_variant_get_child(parameters, 3, "u", &pixman);
  const uint32_t fourcc = core::fourcc_from_pixman(pixman);
  if (fourcc == 0) return core::Error{fmt::format("pixman format 0x{:08x} is not a 32-bit RGB format", pixman)};
  auto [data, size] = bytes_of(parameters, 4);
  if (core::Status s = check_pixel_data(size, stride, int64_t(width) * 4, height); !s) return s;
  if (size_query_) {  // Updates deferred before this Scanout are all overwritten by it
    g_cancellable_cancel(size_query_.get());
    size_query_.reset();
    deferred_updates_.clear();
  }
  bool reallocated = false;
  if (core::Status s = value_.ensure(width, height, fourcc, reallocated); !s) return s;
  const core::FrameBufferPtr& surface = value_.buffer();
  // A surface kept from before holds the previous picture (another kind of scanout in between
  // would have dropped it).
  const bool was_current = !reallocated;
  switch_to(surface);
  core::TileMask& changed = assembler_.tiles(surface);
  std::lock_guard lock(stats_mutex_);
  if (was_current) {
    // QEMU sends a whole-surface refresh as a Scanout: refined like any band.
    const uint64_t before = tile_counters_.bytes_copied;
    value_.write(whole(surface), data, stride, changed, tile_counters_);
    stats_.bytes_written += tile_counters_.bytes_copied - before;
  } else {
    if (reallocated) {
      log_.info("scanout {}x{} {} by value", width, height, surface->format().name());
      ++stats_.surfaces_allocated;
    }
    value_.write_all(data, stride);
    changed.set_all();
    stats_.bytes_written += uint64_t(width) * height * 4;
  }
  assembler_.note_message();
  ++stats_.scanouts;
  stats_.scanout_kind = "pixels-by-value";
  stats_.pixel_bytes_received += size;
  return {};
}

core::Status Listener::update(GVariant* parameters) {
  int32_t x = 0, y = 0, width = 0, height = 0;
  uint32_t stride = 0, pixman = 0;
  g_variant_get_child(parameters, 0, "i", &x);
  g_variant_get_child(parameters, 1, "i", &y);
  g_variant_get_child(parameters, 2, "i", &width);
  g_variant_get_child(parameters, 3, "i", &height);
  g_variant_get_child(parameters, 4, "u", &stride);
  g_variant_get_child(parameters, 5, "u", &pixman);
  if (core::fourcc_from_pixman(pixman) == 0)
    return core::Error{fmt::format("pixman format 0x{:08x} is not a 32-bit RGB format", pixman)};
  const core::Rect rect{x, y, width, height};
  if (rect.empty()) return core::Error{fmt::format("empty rectangle {}", rect.to_string())};
  if (!value_.contains(rect) || size_query_) {
    // QEMU changed the surface without a Scanout: learn its size, then apply this Update.
    const core::FrameBufferPtr& surface = value_.buffer();
    if (!config_.console.connection)
      return surface ? core::Error{fmt::format("rectangle {} is not inside the {}x{} surface", rect.to_string(),
                                               surface->width(), surface->height())}
                     : core::Error{"an Update before any Scanout"};
    if (deferred_updates_.size() >= kMaxDeferredUpdates)
      return core::Error{fmt::format("{} Updates wait for the console's new size already", deferred_updates_.size())};
    deferred_updates_.emplace_back(g_variant_ref(parameters));
    if (!size_query_) query_console_size();
    return {};
  }
  auto [data, size] = bytes_of(parameters, 6);
  if (core::Status s = check_pixel_data(size, stride, int64_t(width) * 4, height); !s) return s;
  std::lock_guard lock(stats_mutex_);
  const uint64_t before = tile_counters_.bytes_copied;
  value_.write(rect, data, stride, assembler_.tiles(value_.buffer()), tile_counters_);
  stats_.bytes_written += tile_counters_.bytes_copied - before;
  assembler_.note_message();
  ++stats_.updates;
  stats_.pixel_bytes_received += size;
  stats_.update_bytes += uint64_t(rect.area()) * 4;
  return {};
}

void Listener::query_console_size() {
  size_query_.reset(g_cancellable_new());
  g_dbus_connection_call(config_.console.connection, config_.console.peer_name, config_.console.path.c_str(),
                         "org.freedesktop.DBus.Properties", "GetAll", g_variant_new("(s)", "org.qemu.Display1.Console"),
                         G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NO_AUTO_START, DisplayConnection::kCallTimeoutMs,
                         size_query_.get(), &Listener::on_console_size, this);
}

void Listener::on_console_size(GObject* source, GAsyncResult* result, gpointer data) {
  glib::GErrorSlot err;
  glib::GVariantPtr reply(g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, err.out()));
  if (!reply && err.matches(G_IO_ERROR, G_IO_ERROR_CANCELLED)) return;  // the listener is gone
  auto* self = static_cast<Listener*>(data);
  self->size_query_.reset();
  std::vector<glib::GVariantPtr> deferred = std::move(self->deferred_updates_);
  uint32_t width = 0, height = 0;
  if (reply) {
    glib::GVariantPtr dict(g_variant_get_child_value(reply.get(), 0));
    g_variant_lookup(dict.get(), "Width", "u", &width);
    g_variant_lookup(dict.get(), "Height", "u", &height);
  }
  bool reallocated = false;
  const core::FrameBufferPtr& old = self->value_.buffer();
  const uint32_t fourcc = old ? old->format().fourcc : DRM_FORMAT_XRGB8888;
  core::Status sized = reply ? self->value_.ensure(width, height, fourcc, reallocated)
                             : core::Status(core::Error{"reading the console's size: " + err.message()});
  if (!sized) {
    self->log_.warn("dropped {} Updates for a surface of unknown size: {}", deferred.size(), sized.error());
    return;
  }
  self->switch_to(self->value_.buffer());
  if (reallocated) {
    self->log_.info("QEMU switched the surface to {}x{} without a Scanout", width, height);
    std::lock_guard lock(self->stats_mutex_);
    ++self->stats_.surfaces_allocated;
    // A new surface is shown whole: what the bands below do not cover is its blank start.
    self->assembler_.tiles(self->value_.buffer()).set_all();
  }
  for (const glib::GVariantPtr& update : deferred)
    if (core::Status s = self->update(update.get()); !s)
      self->log_.warn_limited(self->refusals_logged_, "refused a deferred Update: {}", s.error());
}

core::Status Listener::scanout_map(GVariant* parameters, GDBusMethodInvocation* invocation) {
  int32_t handle = -1;
  uint32_t offset = 0, width = 0, height = 0, stride = 0, pixman = 0;
  g_variant_get(parameters, "(huuuuu)", &handle, &offset, &width, &height, &stride, &pixman);
  auto fd = take_fd(invocation, handle);
  if (!fd) return core::Error{fd.error()};
  // A refused ScanoutMap leaves what was current: QEMU then sends the surface by value.
  if (core::Status s = map_.scanout(std::move(*fd), offset, width, height, stride, pixman); !s) return s;
  const core::FrameBufferPtr& surface = map_.buffer();
  log_.info("scanout {}x{} {} in shared memory (ScanoutMap)", width, height, surface->format().name());
  switch_to(surface);
  assembler_.tiles(surface).set_all();
  assembler_.note_message();
  std::lock_guard lock(stats_mutex_);
  ++stats_.map_scanouts;
  stats_.scanout_kind = "shared-memory";
  return {};
}

core::Status Listener::update_map(GVariant* parameters) {
  int32_t x = 0, y = 0, width = 0, height = 0;
  g_variant_get(parameters, "(iiii)", &x, &y, &width, &height);
  if (!map_.buffer()) return core::Error{"an UpdateMap without a valid ScanoutMap"};
  std::lock_guard lock(stats_mutex_);
  const uint64_t before = tile_counters_.bytes_copied;
  const core::Rect rect = core::Rect{x, y, width, height}.intersected(
      {0, 0, map_.buffer()->width(), map_.buffer()->height()});
  // tiles() opens a pending frame when none is; a refused update must not leave one open, with no
  // quiet-period timer to ever hand it on (found by fuzz_qemu_listener: frame_pending() stuck).
  const bool was_pending = assembler_.pending();
  core::Status s = map_.update({x, y, width, height}, assembler_.tiles(map_.buffer()), tile_counters_);
  stats_.mirror_bytes += tile_counters_.bytes_copied - before;
  if (!s) {
    if (!was_pending) assembler_.drop();
    return s;
  }
  stats_.update_bytes += uint64_t(rect.area()) * 4;
  assembler_.note_message();
  ++stats_.map_updates;
  return {};
}

core::Status Listener::scanout_dmabuf(GVariant* parameters, GDBusMethodInvocation* invocation) {
  int32_t handle = -1;
  uint32_t width = 0, height = 0, stride = 0, fourcc = 0;
  uint64_t modifier = 0;
  gboolean y0_top = TRUE;
  g_variant_get(parameters, "(huuuutb)", &handle, &width, &height, &stride, &fourcc, &modifier, &y0_top);
  dmabuf_.reset();  // whatever happens, the previous scanout is gone
  auto fd = take_fd(invocation, handle);
  if (!fd) return core::Error{fd.error()};
  DmabufScanout scanout;
  scanout.fds[0] = std::move(*fd);
  scanout.strides[0] = stride;
  scanout.planes = 1;
  scanout.fourcc = fourcc;
  scanout.modifier = modifier;
  scanout.width = scanout.backing_width = width;
  scanout.height = scanout.backing_height = height;
  return use_dmabuf(std::move(scanout), y0_top, false);
}

core::Status Listener::scanout_dmabuf2(GVariant* parameters, GDBusMethodInvocation* invocation) {
  dmabuf_.reset();
  glib::GVariantPtr handles(g_variant_get_child_value(parameters, 0));
  glib::GVariantPtr offsets(g_variant_get_child_value(parameters, 5));
  glib::GVariantPtr strides(g_variant_get_child_value(parameters, 6));
  DmabufScanout scanout;
  uint32_t num_planes = 0;
  gboolean y0_top = TRUE;
  g_variant_get_child(parameters, 1, "u", &scanout.x);
  g_variant_get_child(parameters, 2, "u", &scanout.y);
  g_variant_get_child(parameters, 3, "u", &scanout.width);
  g_variant_get_child(parameters, 4, "u", &scanout.height);
  g_variant_get_child(parameters, 7, "u", &num_planes);
  g_variant_get_child(parameters, 8, "u", &scanout.fourcc);
  g_variant_get_child(parameters, 9, "u", &scanout.backing_width);
  g_variant_get_child(parameters, 10, "u", &scanout.backing_height);
  g_variant_get_child(parameters, 11, "t", &scanout.modifier);
  g_variant_get_child(parameters, 12, "b", &y0_top);
  const size_t n_fds = g_variant_n_children(handles.get()), n_offsets = g_variant_n_children(offsets.get()),
               n_strides = g_variant_n_children(strides.get());
  if (num_planes < 1 || num_planes > uint32_t(core::FrameBuffer::kMaxPlanes))
    return core::Error{fmt::format("plane count {} is outside 1..{}", num_planes, core::FrameBuffer::kMaxPlanes)};
  if (n_fds != num_planes || n_offsets != num_planes || n_strides != num_planes)
    return core::Error{fmt::format("{} planes, but {} fds, {} offsets and {} strides", num_planes, n_fds, n_offsets,
                                   n_strides)};
  scanout.planes = int(num_planes);
  for (size_t i = 0; i < num_planes; ++i) {
    int32_t handle = -1;
    g_variant_get_child(handles.get(), i, "h", &handle);
    g_variant_get_child(offsets.get(), i, "u", &scanout.offsets[i]);
    g_variant_get_child(strides.get(), i, "u", &scanout.strides[i]);
    auto fd = take_fd(invocation, handle);
    if (!fd) return core::Error{fmt::format("plane {}: {}", i, fd.error())};
    scanout.fds[i] = std::move(*fd);
  }
  return use_dmabuf(std::move(scanout), y0_top, true);
}

core::Status Listener::use_dmabuf(DmabufScanout scanout, bool y0_top, bool v2) {
  auto buffer = dmabufs_.import(std::move(scanout));
  if (!buffer) {
    assembler_.drop();
    return core::Error{buffer.error()};
  }
  if (!y0_top && !warned_bottom_up_) {
    warned_bottom_up_ = true;
    log_.warn("the dma-buf scanout is bottom-up (y0_top false); frames are passed on as they are");
  }
  dmabuf_ = std::move(*buffer);
  switch_to(dmabuf_);
  assembler_.add(dmabuf_, whole(dmabuf_), true);
  assembler_.note_message();
  std::lock_guard lock(stats_mutex_);
  ++stats_.dmabuf_scanouts;
  stats_.scanout_kind = "dma-buf";
  if (v2) ++stats_.dmabuf2_scanouts;
  return {};
}

core::Status Listener::update_dmabuf(GVariant* parameters) {
  int32_t x = 0, y = 0, width = 0, height = 0;
  g_variant_get(parameters, "(iiii)", &x, &y, &width, &height);
  if (!dmabuf_) return core::Error{"an UpdateDMABUF without a valid ScanoutDMABUF"};
  const core::Rect surface = whole(dmabuf_);
  const core::Rect rect = core::Rect{x, y, width, height}.intersected(surface);
  if (rect.empty()) return core::Error{fmt::format("rectangle {}x{}+{}+{} is outside the {}x{} scanout", width, height,
                                                   x, y, surface.width, surface.height)};
  // A whole-surface update carries no damage information (GVT-g sends only these): the encoder's
  // damage tracker finds what changed.
  assembler_.add(dmabuf_, rect, rect != surface);
  assembler_.note_message();
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.dmabuf_updates;
  }
  // QEMU holds the guest's display until the reply: the frame is taken now, the reply follows.
  assembler_.flush();
  return {};
}

core::Status Listener::cursor_define(GVariant* parameters) {
  core::CursorShape shape;
  g_variant_get_child(parameters, 0, "i", &shape.width);
  g_variant_get_child(parameters, 1, "i", &shape.height);
  g_variant_get_child(parameters, 2, "i", &shape.hot_x);
  g_variant_get_child(parameters, 3, "i", &shape.hot_y);
  if (shape.width <= 0 || shape.height <= 0 || shape.width > kMaxCursorSide || shape.height > kMaxCursorSide)
    return core::Error{fmt::format("cursor size {}x{} is outside 1..{}", shape.width, shape.height, kMaxCursorSide)};
  auto [data, size] = bytes_of(parameters, 4);
  const size_t needed = size_t(shape.width) * size_t(shape.height) * 4;
  if (size != needed)
    return core::Error{fmt::format("cursor {}x{} needs {} bytes of ARGB, got {}", shape.width, shape.height, needed, size)};
  shape.argb.resize(needed / 4);
  std::memcpy(shape.argb.data(), data, needed);
  if (callbacks_.on_cursor_shape) callbacks_.on_cursor_shape(shape);
  return {};
}

void Listener::mouse_set(GVariant* parameters) {
  int32_t x = 0, y = 0, on = 0;
  g_variant_get(parameters, "(iii)", &x, &y, &on);
  if (callbacks_.on_cursor_position) callbacks_.on_cursor_position({x, y, on != 0});
}

void Listener::disable() {
  log_.info("QEMU disabled the display");
  assembler_.drop();
  switch_to(nullptr);
  std::lock_guard lock(stats_mutex_);
  stats_.scanout_kind.clear();
}

}  // namespace vdistream::capture::qemu
