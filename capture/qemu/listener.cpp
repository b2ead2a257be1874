#include "capture/qemu/listener.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>
#include <gio/gunixfdlist.h>
#include <sys/stat.h>

#include <cstring>

#include "capture/qemu/display_connection.hpp"
#include "core/clock.hpp"

namespace vdistream::capture::qemu {

namespace {

// The part of QEMU's ui/dbus-display1.xml we serve (QEMU 7.2's Listener, plus the Interfaces
// property later versions read).
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
</node>)";

constexpr const char* kRefusedError = "org.qemu.Display1.Listener.Error.Refused";
constexpr int32_t kMaxCursorSide = 512;
constexpr size_t kMaxDeferredUpdates = 4096;

// The bytes of an `ay` argument, without copying them out of the message.
std::pair<const uint8_t*, size_t> bytes_of(GVariant* parameters, size_t index) {
  GVariantPtr child(g_variant_get_child_value(parameters, index));
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

}  // namespace

Listener::Listener(const ListenerConfig& config, SourceCallbacks callbacks)
    : config_(config), callbacks_(std::move(callbacks)), log_(config.name) {}

core::Result<std::unique_ptr<Listener>> Listener::create(core::UniqueFd socket, const ListenerConfig& config,
                                                         SourceCallbacks callbacks, GCancellable* cancellable) {
  std::unique_ptr<Listener> self(new Listener(config, std::move(callbacks)));
  GErrorSlot err;
  self->node_.reset(g_dbus_node_info_new_for_xml(kListenerXml, err.out()));
  if (!self->node_) return core::Error{fmt::format("listener introspection data: {}", err.message())};

  // Exported before the first message is read: QEMU reads our properties as soon as it has us.
  auto connection = open_peer_connection(std::move(socket), G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING, cancellable);
  if (!connection) return core::Error{"listener connection: " + connection.error()};
  self->connection_ = std::move(*connection);
  static const GDBusInterfaceVTable vtable = {&Listener::on_method_call, &Listener::on_get_property, nullptr, {}};
  self->registration_ = g_dbus_connection_register_object(self->connection_.get(), kObjectPath,
                                                          self->node_->interfaces[0], &vtable, self.get(), nullptr,
                                                          err.out());
  if (self->registration_ == 0) return core::Error{fmt::format("exporting {}: {}", kObjectPath, err.message())};
  self->closed_handler_ = g_signal_connect(self->connection_.get(), "closed", G_CALLBACK(&Listener::on_closed), self.get());
  g_dbus_connection_start_message_processing(self->connection_.get());
  return self;
}

Listener::~Listener() {
  if (size_query_) g_cancellable_cancel(size_query_.get());
  if (!connection_) return;
  if (closed_handler_) g_signal_handler_disconnect(connection_.get(), closed_handler_);
  if (registration_) g_dbus_connection_unregister_object(connection_.get(), registration_);
  g_dbus_connection_close(connection_.get(), nullptr, nullptr, nullptr);
}

ListenerStats Listener::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void Listener::on_closed(GDBusConnection*, gboolean remote_peer_vanished, GError* error, gpointer data) {
  auto* self = static_cast<Listener*>(data);
  self->closed_ = true;
  self->close_reason_ = remote_peer_vanished ? fmt::format("QEMU closed the display connection{}{}",
                                                           error ? ": " : "", error ? error->message : "")
                                             : "the display connection was closed";
}

GVariant* Listener::on_get_property(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* name,
                                    GError** error, gpointer) {
  if (std::strcmp(name, "Interfaces") == 0) return g_variant_new_strv(nullptr, 0);  // no optional interfaces
  g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", name);
  return nullptr;
}

void Listener::on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                              GVariant* parameters, GDBusMethodInvocation* invocation, gpointer data) {
  auto* self = static_cast<Listener*>(data);
  const std::string_view name(method);
  core::Status result;
  if (name == "Update") result = self->update(parameters);
  else if (name == "UpdateDMABUF") result = self->update_dmabuf(parameters);  // replied below: after on_frame
  else if (name == "Scanout") result = self->scanout(parameters);
  else if (name == "ScanoutDMABUF") result = self->scanout_dmabuf(parameters, invocation);
  else if (name == "CursorDefine") result = self->cursor_define(parameters);
  else if (name == "MouseSet") self->mouse_set(parameters);
  else if (name == "Disable") self->disable();
  else result = core::Error{fmt::format("unknown method {}", name)};

  if (result) {
    g_dbus_method_invocation_return_value(invocation, nullptr);
    return;
  }
  self->log_.warn("refused {}: {}", name, result.error());
  {
    std::lock_guard lock(self->stats_mutex_);
    ++self->stats_.refused;
    self->stats_.last_refusal = fmt::format("{}: {}", name, result.error());
  }
  g_dbus_method_invocation_return_dbus_error(invocation, kRefusedError, result.error().c_str());
}

// One surface, written in place. Pixel data sent by value is written once into the surface and
// never copied again (ARCHITECTURE invariant 1), so a pool would not help: keeping a second
// buffer current would mean writing every rectangle twice. The encoder may therefore read a
// rectangle while the next Update writes it; such a tear never stays on screen because the
// frame for that Update is handed on only after the write, its damage covers the rectangle, and
// the latest-wins slot merges damage, so the encoder converts the rectangle again from the
// finished pixels. A new size gets a new surface; frames of the old one keep it alive.
core::Status Listener::ensure_surface(uint32_t width, uint32_t height, uint32_t fourcc, bool& reallocated) {
  reallocated = false;
  if (surface_ && uint32_t(surface_->width()) == width && uint32_t(surface_->height()) == height &&
      surface_->format().fourcc == fourcc)
    return {};
  // allocate_memfd refuses sizes outside 1..16384 before it allocates anything.
  auto buffer = core::FrameBuffer::allocate_memfd(int32_t(width), int32_t(height), fourcc,
                                                  fmt::format("vdistream-{}-surface", config_.name));
  if (!buffer) return core::Error{fmt::format("surface {}x{}: {}", width, height, buffer.error())};
  auto mapping = core::MappedBuffer::map(**buffer, core::MappedBuffer::Access::ReadWrite);
  if (!mapping) return core::Error{fmt::format("mapping the {}x{} surface: {}", width, height, mapping.error())};
  surface_ = std::move(*buffer);
  surface_map_ = std::move(*mapping);
  reallocated = true;
  std::lock_guard lock(stats_mutex_);
  ++stats_.surfaces_allocated;
  return {};
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
  if (core::Status s = ensure_surface(width, height, fourcc, reallocated); !s) return s;
  if (reallocated) log_.info("scanout {}x{} {} by value", width, height, surface_->format().name());
  {
    core::MappedBuffer::CpuAccess access(*surface_map_);
    uint8_t* out = surface_map_->writable_data();
    for (uint32_t row = 0; row < height; ++row)
      std::memcpy(out + size_t(row) * surface_map_->pitch(), data + size_t(row) * stride, size_t(width) * 4);
  }
  dmabuf_.reset();
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.scanouts;
    stats_.bytes_written += uint64_t(width) * height * 4;
  }
  emit_frame(surface_, {0, 0, int32_t(width), int32_t(height)}, true);
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
  const bool fits = surface_ && rect.intersected({0, 0, surface_->width(), surface_->height()}) == rect;
  if (!fits || size_query_) {
    // QEMU changed the surface without a Scanout: learn its size, then apply this Update.
    if (!config_.console.connection)
      return surface_ ? core::Error{fmt::format("rectangle {} is not inside the {}x{} surface", rect.to_string(),
                                                surface_->width(), surface_->height())}
                      : core::Error{"an Update before any Scanout"};
    if (deferred_updates_.size() >= kMaxDeferredUpdates)
      return core::Error{fmt::format("{} Updates wait for the console's new size already", deferred_updates_.size())};
    deferred_updates_.emplace_back(g_variant_ref(parameters));
    if (!size_query_) query_console_size();
    return {};
  }
  auto [data, size] = bytes_of(parameters, 6);
  if (core::Status s = check_pixel_data(size, stride, int64_t(width) * 4, height); !s) return s;
  {
    core::MappedBuffer::CpuAccess access(*surface_map_);
    const size_t pitch = surface_map_->pitch();
    uint8_t* out = surface_map_->writable_data() + size_t(y) * pitch + size_t(x) * 4;
    for (int32_t row = 0; row < height; ++row)
      std::memcpy(out + size_t(row) * pitch, data + size_t(row) * stride, size_t(width) * 4);
  }
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.updates;
    stats_.bytes_written += uint64_t(width) * uint64_t(height) * 4;
  }
  emit_frame(surface_, rect, true);
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
  GErrorSlot err;
  GVariantPtr reply(g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, err.out()));
  if (!reply && err.matches(G_IO_ERROR, G_IO_ERROR_CANCELLED)) return;  // the listener is gone
  auto* self = static_cast<Listener*>(data);
  self->size_query_.reset();
  std::vector<GVariantPtr> deferred = std::move(self->deferred_updates_);
  uint32_t width = 0, height = 0;
  if (reply) {
    GVariantPtr dict(g_variant_get_child_value(reply.get(), 0));
    g_variant_lookup(dict.get(), "Width", "u", &width);
    g_variant_lookup(dict.get(), "Height", "u", &height);
  }
  bool reallocated = false;
  const uint32_t fourcc = self->surface_ ? self->surface_->format().fourcc : DRM_FORMAT_XRGB8888;
  core::Status sized = reply ? self->ensure_surface(width, height, fourcc, reallocated)
                             : core::Status(core::Error{"reading the console's size: " + err.message()});
  if (!sized) {
    self->log_.warn("dropped {} Updates for a surface of unknown size: {}", deferred.size(), sized.error());
    return;
  }
  if (reallocated) self->log_.info("QEMU switched the surface to {}x{} without a Scanout", width, height);
  for (const GVariantPtr& update : deferred)
    if (core::Status s = self->update(update.get()); !s) self->log_.warn("refused a deferred Update: {}", s.error());
}

core::Result<core::FrameBufferPtr> Listener::import_dmabuf(core::UniqueFd fd, uint32_t width, uint32_t height,
                                                           uint32_t stride, uint32_t fourcc, uint64_t modifier) {
  const core::PixelFormat format{fourcc, modifier};
  if (!format.linear() && !config_.accept_tiled)
    return core::Error{fmt::format("modifier {} is tiled and no encoder of this build imports tiled buffers",
                                   core::modifier_name(modifier))};
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return core::Error{fmt::format("fstat of the dma-buf fd: {}", strerror(errno))};
  const core::BufferId id{uint64_t(st.st_dev), uint64_t(st.st_ino)};
  for (auto it = imports_.begin(); it != imports_.end(); ++it) {
    const core::FrameBuffer& b = **it;
    if (b.id() != id) continue;
    if (uint32_t(b.width()) == width && uint32_t(b.height()) == height && b.plane(0).pitch == stride &&
        b.format() == format) {
      imports_.splice(imports_.begin(), imports_, it);
      std::lock_guard lock(stats_mutex_);
      ++stats_.dmabuf_reused;
      return imports_.front();  // the fresh duplicate fd closes here
    }
    imports_.erase(it);  // the same buffer with a new layout: import again
    break;
  }
  std::array<core::Plane, core::FrameBuffer::kMaxPlanes> planes;
  planes[0] = core::Plane{std::move(fd), 0, stride};
  // FrameBuffer::create checks the descriptor (size, fourcc, pitch, fd length) before any use.
  auto buffer = core::FrameBuffer::create(int32_t(width), int32_t(height), format, std::move(planes), 1);
  if (!buffer) return core::Error{buffer.error()};
  imports_.push_front(*buffer);
  while (imports_.size() > config_.import_cache) imports_.pop_back();
  std::lock_guard lock(stats_mutex_);
  ++stats_.dmabuf_imports;
  return buffer;
}

core::Status Listener::scanout_dmabuf(GVariant* parameters, GDBusMethodInvocation* invocation) {
  int32_t handle = -1;
  uint32_t width = 0, height = 0, stride = 0, fourcc = 0;
  uint64_t modifier = 0;
  gboolean y0_top = TRUE;
  g_variant_get(parameters, "(huuuutb)", &handle, &width, &height, &stride, &fourcc, &modifier, &y0_top);
  dmabuf_.reset();  // whatever happens, the previous scanout is gone
  GUnixFDList* fds = g_dbus_message_get_unix_fd_list(g_dbus_method_invocation_get_message(invocation));
  if (!fds || handle < 0 || handle >= g_unix_fd_list_get_length(fds))
    return core::Error{fmt::format("fd handle {} is not among the {} fds passed", handle, fds ? g_unix_fd_list_get_length(fds) : 0)};
  GErrorSlot err;
  core::UniqueFd fd(g_unix_fd_list_get(fds, handle, err.out()));
  if (!fd) return core::Error{fmt::format("taking fd {}: {}", handle, err.message())};
  auto buffer = import_dmabuf(std::move(fd), width, height, stride, fourcc, modifier);
  if (!buffer) return core::Error{buffer.error()};
  if (!y0_top && !warned_bottom_up_) {
    warned_bottom_up_ = true;
    log_.warn("the dma-buf scanout is bottom-up (y0_top false); frames are passed on as they are");
  }
  dmabuf_ = std::move(*buffer);
  surface_.reset();  // by-value updates need a new Scanout first
  surface_map_.reset();
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.dmabuf_scanouts;
  }
  emit_frame(dmabuf_, {0, 0, dmabuf_->width(), dmabuf_->height()}, true);
  return {};
}

core::Status Listener::update_dmabuf(GVariant* parameters) {
  int32_t x = 0, y = 0, width = 0, height = 0;
  g_variant_get(parameters, "(iiii)", &x, &y, &width, &height);
  if (!dmabuf_) return core::Error{"an UpdateDMABUF without a valid ScanoutDMABUF"};
  const core::Rect whole{0, 0, dmabuf_->width(), dmabuf_->height()};
  const core::Rect rect = core::Rect{x, y, width, height}.intersected(whole);
  if (rect.empty()) return core::Error{fmt::format("rectangle {}x{}+{}+{} is outside the {}x{} scanout", width, height,
                                                   x, y, whole.width, whole.height)};
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.dmabuf_updates;
  }
  // A whole-surface update carries no damage information (GVT-g sends only these): the encoder's
  // damage tracker finds what changed.
  emit_frame(dmabuf_, rect, rect != whole);
  return {};  // the reply goes out now that the frame has been taken: it paces the guest
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
  dmabuf_.reset();
  surface_.reset();
  surface_map_.reset();
}

void Listener::emit_frame(const core::FrameBufferPtr& buffer, const core::Rect& rect, bool exact) {
  core::Frame frame;
  frame.buffer = buffer;
  frame.damage = core::DamageRegion(rect);
  frame.damage_exact = exact;
  frame.sequence = sequence_++;
  frame.timestamps.captured_ns = core::monotonic_now_ns();
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.frames;
  }
  if (callbacks_.on_frame) callbacks_.on_frame(std::move(frame));
}

}  // namespace vdistream::capture::qemu
