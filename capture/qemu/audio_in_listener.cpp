#include "capture/qemu/audio_in_listener.hpp"

#include <fmt/format.h>

#include "capture/qemu/audio_listener.hpp"  // audio_listener_xml, parse_audio_init

namespace vdistream::capture::qemu {

namespace {

// The AudioInListener's own method in QEMU's ui/dbus-display1.xml (the same from 7.2 to 10.x).
constexpr const char* kReadXml = R"(    <method name="Read">
      <arg type="t" name="id" direction="in"/><arg type="t" name="size" direction="in"/>
      <arg type="ay" name="data" direction="out"/>
    </method>
)";

constexpr const char* kRefusedError = "org.qemu.Display1.AudioInListener.Error.Refused";

}  // namespace

AudioInListener::AudioInListener(const std::string& name, std::shared_ptr<core::Microphone> microphone)
    : log_(name), microphone_(std::move(microphone)) {}

core::Result<std::unique_ptr<AudioInListener>> AudioInListener::create(glib::GObjectPtr<GDBusConnection> connection,
                                                                       const std::string& name,
                                                                       std::shared_ptr<core::Microphone> microphone) {
  if (!microphone) return core::Error{"no microphone to read from"};
  std::unique_ptr<AudioInListener> self(new AudioInListener(name, std::move(microphone)));
  glib::GErrorSlot err;
  self->node_.reset(g_dbus_node_info_new_for_xml(audio_listener_xml(kInterface, kReadXml).c_str(), err.out()));
  if (!self->node_) return core::Error{fmt::format("microphone listener introspection data: {}", err.message())};
  self->connection_ = std::move(connection);
  static const GDBusInterfaceVTable vtable = {&AudioInListener::on_method_call, nullptr, nullptr, {}};
  self->registration_ = g_dbus_connection_register_object(self->connection_.get(), kObjectPath,
                                                          self->node_->interfaces[0], &vtable, self.get(), nullptr, err.out());
  if (self->registration_ == 0) return core::Error{fmt::format("exporting {}: {}", kObjectPath, err.message())};
  self->closed_handler_ =
      g_signal_connect(self->connection_.get(), "closed", G_CALLBACK(&AudioInListener::on_closed), self.get());
  {
    std::lock_guard lock(self->stats_mutex_);
    self->stats_.connected = true;
  }
  g_dbus_connection_start_message_processing(self->connection_.get());
  return self;
}

AudioInListener::~AudioInListener() {
  for (const auto& [id, stream] : streams_)
    if (stream.enabled) microphone_->vm_listening(id, false);
  if (!connection_) return;
  if (closed_handler_) g_signal_handler_disconnect(connection_.get(), closed_handler_);
  if (registration_) g_dbus_connection_unregister_object(connection_.get(), registration_);
  g_dbus_connection_close(connection_.get(), nullptr, nullptr, nullptr);
}

MicrophoneCaptureStats AudioInListener::stats() const {
  std::lock_guard lock(stats_mutex_);
  MicrophoneCaptureStats s = stats_;
  s.connected = !closed_;
  return s;
}

void AudioInListener::on_closed(GDBusConnection*, gboolean, GError*, gpointer data) {
  static_cast<AudioInListener*>(data)->closed_ = true;
}

void AudioInListener::on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                                     GVariant* parameters, GDBusMethodInvocation* invocation, gpointer data) {
  auto* self = static_cast<AudioInListener*>(data);
  const std::string_view name(method);
  std::vector<uint8_t> pcm;
  const core::Status result = name == "Read" ? self->read(parameters, pcm) : self->dispatch(name, parameters);
  if (!result) {
    {
      std::lock_guard lock(self->stats_mutex_);
      ++self->stats_.refused;
      self->stats_.last_refusal = fmt::format("{}: {}", method, result.error());
    }
    self->log_.warn_limited(self->refusals_logged_, "microphone: refused {}: {}", method, result.error());
  }
  if (name == "Read") {  // always answered with bytes (none when refused): QEMU waits for them
    GVariant* data_v = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, pcm.data(), pcm.size(), 1);
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(@ay)", data_v));
  } else if (result) {
    g_dbus_method_invocation_return_value(invocation, nullptr);
  } else {
    g_dbus_method_invocation_return_dbus_error(invocation, kRefusedError, result.error().c_str());
  }
}

void AudioInListener::set_listening(uint64_t id, bool on) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.enabled == on) return;
  it->second.enabled = on;
  microphone_->vm_listening(id, on);
  bool any = false;
  for (const auto& [_, s] : streams_) any = any || s.enabled;
  log_.info("microphone: the guest {} recording (stream {})", on ? "started" : "stopped", id);
  std::lock_guard lock(stats_mutex_);
  stats_.listening = any;
}

core::Status AudioInListener::dispatch(std::string_view method, GVariant* parameters) {
  uint64_t id = 0;
  if (method == "Init") {
    auto parsed = parse_audio_init(parameters);
    if (!parsed) return core::Error{parsed.error()};
    const auto [stream, format] = *parsed;
    set_listening(stream, false);
    streams_[stream] = Stream{format, false};
    log_.info("microphone: stream {} is {}", stream, format.describe());
    std::lock_guard lock(stats_mutex_);
    ++stats_.streams;
    stats_.format = format.describe();
    return {};
  }
  if (method == "Fini") {
    g_variant_get(parameters, "(t)", &id);
    set_listening(id, false);
    streams_.erase(id);
    return {};
  }
  if (method == "SetEnabled") {
    gboolean enabled = false;
    g_variant_get(parameters, "(tb)", &id, &enabled);
    if (!streams_.count(id)) return core::Error{fmt::format("stream {} was never initialised", id)};
    set_listening(id, enabled);
    return {};
  }
  if (method == "SetVolume") {
    // The guest's capture level is the guest's to apply to what it records; we hand it the
    // viewer's sound as it came.
    g_variant_get(parameters, "(tb@ay)", &id, nullptr, nullptr);
    if (!streams_.count(id)) return core::Error{fmt::format("stream {} was never initialised", id)};
    return {};
  }
  return core::Error{fmt::format("unknown method {}", method)};
}

core::Status AudioInListener::read(GVariant* parameters, std::vector<uint8_t>& out) {
  uint64_t id = 0, size = 0;
  g_variant_get(parameters, "(tt)", &id, &size);
  auto it = streams_.find(id);
  if (it == streams_.end()) return core::Error{fmt::format("stream {} was never initialised", id)};
  // QEMU reads only enabled streams; a listener that came later may not have been told.
  if (!it->second.enabled) set_listening(id, true);
  const core::AudioFormat& format = it->second.format;
  const size_t frames = size_t(std::min<uint64_t>(size, kMaxReadBytes)) / format.bytes_per_frame;
  out.resize(frames * format.bytes_per_frame);
  const size_t got = frames ? microphone_->read(id, format, frames, out.data()) : 0;
  out.resize(got * format.bytes_per_frame);
  std::lock_guard lock(stats_mutex_);
  ++stats_.reads;
  stats_.bytes += out.size();
  stats_.format = format.describe();
  return {};
}

}  // namespace vdistream::capture::qemu
