#include "capture/qemu/audio_listener.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/clock.hpp"

namespace vdistream::capture::qemu {

namespace {

// The AudioOutListener's own method in QEMU's ui/dbus-display1.xml (the same from 7.2 to 10.x).
constexpr const char* kWriteXml = R"(    <method name="Write">
      <arg type="t" name="id" direction="in"/><arg type="ay" name="data" direction="in"/>
    </method>
)";

constexpr const char* kRefusedError = "org.qemu.Display1.AudioOutListener.Error.Refused";

}  // namespace

AudioListener::AudioListener(const std::string& name, SourceCallbacks callbacks)
    : log_(name), callbacks_(std::move(callbacks)) {}

core::Result<std::unique_ptr<AudioListener>> AudioListener::create(glib::GObjectPtr<GDBusConnection> connection,
                                                                   const std::string& name, SourceCallbacks callbacks) {
  std::unique_ptr<AudioListener> self(new AudioListener(name, std::move(callbacks)));
  glib::GErrorSlot err;
  self->node_.reset(g_dbus_node_info_new_for_xml(audio_listener_xml(kInterface, kWriteXml).c_str(), err.out()));
  if (!self->node_) return core::Error{fmt::format("audio listener introspection data: {}", err.message())};
  self->connection_ = std::move(connection);
  static const GDBusInterfaceVTable vtable = {&AudioListener::on_method_call, nullptr, nullptr, {}};
  self->registration_ = g_dbus_connection_register_object(self->connection_.get(), kObjectPath,
                                                          self->node_->interfaces[0], &vtable, self.get(), nullptr, err.out());
  if (self->registration_ == 0) return core::Error{fmt::format("exporting {}: {}", kObjectPath, err.message())};
  self->closed_handler_ =
      g_signal_connect(self->connection_.get(), "closed", G_CALLBACK(&AudioListener::on_closed), self.get());
  {
    std::lock_guard lock(self->stats_mutex_);
    self->stats_.connected = true;
  }
  g_dbus_connection_start_message_processing(self->connection_.get());
  return self;
}

AudioListener::~AudioListener() {
  for (const auto& [id, stream] : streams_)
    if (stream.enabled && callbacks_.on_audio_stop) callbacks_.on_audio_stop(id);
  if (!connection_) return;
  if (closed_handler_) g_signal_handler_disconnect(connection_.get(), closed_handler_);
  if (registration_) g_dbus_connection_unregister_object(connection_.get(), registration_);
  g_dbus_connection_close(connection_.get(), nullptr, nullptr, nullptr);
}

AudioCaptureStats AudioListener::stats() const {
  std::lock_guard lock(stats_mutex_);
  AudioCaptureStats s = stats_;
  s.connected = !closed_;
  return s;
}

void AudioListener::on_closed(GDBusConnection*, gboolean, GError*, gpointer data) {
  static_cast<AudioListener*>(data)->closed_ = true;
}

void AudioListener::on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                                   GVariant* parameters, GDBusMethodInvocation* invocation, gpointer data) {
  auto* self = static_cast<AudioListener*>(data);
  const core::Status result = self->dispatch(method, parameters);
  if (result) {
    g_dbus_method_invocation_return_value(invocation, nullptr);
    return;
  }
  {
    std::lock_guard lock(self->stats_mutex_);
    ++self->stats_.refused;
    self->stats_.last_refusal = fmt::format("{}: {}", method, result.error());
  }
  self->log_.warn_limited(self->refusals_logged_, "audio: refused {}: {}", method, result.error());
  g_dbus_method_invocation_return_dbus_error(invocation, kRefusedError, result.error().c_str());
}

core::Status AudioListener::dispatch(std::string_view method, GVariant* parameters) {
  if (method == "Write") return write(parameters);
  if (method == "Init") return init(parameters);
  uint64_t id = 0;
  if (method == "Fini") {
    g_variant_get(parameters, "(t)", &id);
    stop_stream(id);
    streams_.erase(id);
    return {};
  }
  if (method == "SetEnabled") {
    gboolean enabled = false;
    g_variant_get(parameters, "(tb)", &id, &enabled);
    auto it = streams_.find(id);
    if (it == streams_.end()) return core::Error{fmt::format("stream {} was never initialised", id)};
    if (!enabled) stop_stream(id);
    it->second.enabled = enabled;
    std::lock_guard lock(stats_mutex_);
    stats_.playing = enabled;
    return {};
  }
  if (method == "SetVolume") {
    gboolean mute = false;
    glib::GVariantPtr levels;
    GVariant* raw = nullptr;
    g_variant_get(parameters, "(tb@ay)", &id, &mute, &raw);
    levels.reset(raw);
    auto it = streams_.find(id);
    if (it == streams_.end()) return core::Error{fmt::format("stream {} was never initialised", id)};
    gsize n = 0;
    const auto* bytes = static_cast<const uint8_t*>(g_variant_get_fixed_array(levels.get(), &n, 1));
    it->second.volume.mute = mute;
    it->second.volume.levels.assign(bytes, bytes + n);
    log_.info("audio: the guest {} stream {}{}", mute ? "muted" : "set the volume of", id,
              n ? fmt::format(" (levels {})", fmt::join(it->second.volume.levels, "/")) : "");
    std::lock_guard lock(stats_mutex_);
    stats_.mute = mute;
    return {};
  }
  return core::Error{fmt::format("unknown method {}", method)};
}

std::string audio_listener_xml(std::string_view interface, std::string_view own_methods) {
  // The methods both listeners have (ui/dbus-display1.xml, the same from 7.2 to 10.x).
  constexpr std::string_view kStreamMethods = R"(    <method name="Init">
      <arg type="t" name="id" direction="in"/><arg type="y" name="bits" direction="in"/>
      <arg type="b" name="is_signed" direction="in"/><arg type="b" name="is_float" direction="in"/>
      <arg type="u" name="freq" direction="in"/><arg type="y" name="nchannels" direction="in"/>
      <arg type="u" name="bytes_per_frame" direction="in"/><arg type="u" name="bytes_per_second" direction="in"/>
      <arg type="b" name="be" direction="in"/>
    </method>
    <method name="Fini"><arg type="t" name="id" direction="in"/></method>
    <method name="SetEnabled">
      <arg type="t" name="id" direction="in"/><arg type="b" name="enabled" direction="in"/>
    </method>
    <method name="SetVolume">
      <arg type="t" name="id" direction="in"/><arg type="b" name="mute" direction="in"/>
      <arg type="ay" name="volume" direction="in"/>
    </method>
)";
  return fmt::format("<node>\n  <interface name=\"{}\">\n{}{}  </interface>\n</node>", interface, kStreamMethods,
                     own_methods);
}

core::Result<std::pair<uint64_t, core::AudioFormat>> parse_audio_init(GVariant* parameters) {
  uint64_t id = 0;
  guchar bits = 0, channels = 0;
  gboolean is_signed = false, is_float = false, big_endian = false;
  uint32_t rate = 0, bytes_per_frame = 0, bytes_per_second = 0;
  g_variant_get(parameters, "(tybbuyuub)", &id, &bits, &is_signed, &is_float, &rate, &channels, &bytes_per_frame,
                &bytes_per_second, &big_endian);
  core::AudioFormat format{rate, channels, bits, bool(is_signed), bool(is_float), bool(big_endian), bytes_per_frame};
  if (auto ok = format.check(); !ok) return core::Error{ok.error()};
  if (uint64_t(bytes_per_frame) * rate != bytes_per_second)
    return core::Error{fmt::format("{}: {} bytes per second, {} bytes × {} Hz make {}", format.describe(), bytes_per_second,
                                   bytes_per_frame, rate, uint64_t(bytes_per_frame) * rate)};
  return std::pair{id, format};
}

core::Status AudioListener::init(GVariant* parameters) {
  auto parsed = parse_audio_init(parameters);
  if (!parsed) return core::Error{parsed.error()};
  const auto [id, format] = *parsed;
  stop_stream(id);
  streams_[id] = Stream{format, {}, false};
  log_.info("audio: stream {} is {}", id, format.describe());
  std::lock_guard lock(stats_mutex_);
  ++stats_.streams;
  stats_.format = format.describe();
  return {};
}

core::Status AudioListener::write(GVariant* parameters) {
  uint64_t id = 0;
  GVariant* raw = nullptr;
  g_variant_get(parameters, "(t@ay)", &id, &raw);
  glib::GVariantPtr data(raw);
  auto it = streams_.find(id);
  if (it == streams_.end()) return core::Error{fmt::format("stream {} was never initialised", id)};
  Stream& stream = it->second;
  stream.enabled = true;  // QEMU enables a stream before it writes; a listener that came later may not know
  gsize n = 0;
  const auto* bytes = static_cast<const uint8_t*>(g_variant_get_fixed_array(data.get(), &n, 1));
  if (n > kMaxWriteBytes) return core::Error{fmt::format("{} bytes in one write (at most {})", n, kMaxWriteBytes)};
  if (n % stream.format.bytes_per_frame != 0)
    return core::Error{fmt::format("{} bytes are not whole frames of {} bytes ({})", n, stream.format.bytes_per_frame,
                                   stream.format.describe())};
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.packets;
    stats_.bytes += n;
    stats_.format = stream.format.describe();
  }
  if (n == 0 || !callbacks_.on_audio) return {};
  core::AudioPacket packet{id, stream.format, bytes, size_t(n), stream.volume, core::monotonic_now_ns()};
  callbacks_.on_audio(packet);
  return {};
}

void AudioListener::stop_stream(uint64_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end() || !it->second.enabled) return;
  it->second.enabled = false;
  if (callbacks_.on_audio_stop) callbacks_.on_audio_stop(id);
}

}  // namespace vdistream::capture::qemu
