#include "capture/qemu/qemu_source.hpp"

#include <fmt/format.h>
#include <gio/gunixfdlist.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace vdistream::capture::qemu {

namespace {

constexpr std::string_view kDbusPrefix = "qemu-dbus:", kQmpPrefix = "qemu-qmp:", kConsoleField = "#console=";
constexpr std::chrono::milliseconds kRegisterTimeout{DisplayConnection::kCallTimeoutMs + 1000};
constexpr std::chrono::milliseconds kDrainTimeout{2000};

}  // namespace

bool is_qemu_spec(const std::string& spec) { return spec.starts_with(kDbusPrefix) || spec.starts_with(kQmpPrefix); }

core::Result<QemuSourceConfig> parse_qemu_spec(const std::string& spec) {
  QemuSourceConfig config;
  std::string_view rest(spec);
  if (rest.starts_with(kDbusPrefix)) {
    config.target.kind = DisplayTarget::Kind::Bus;
    rest.remove_prefix(kDbusPrefix.size());
  } else if (rest.starts_with(kQmpPrefix)) {
    config.target.kind = DisplayTarget::Kind::Qmp;
    rest.remove_prefix(kQmpPrefix.size());
  } else {
    return core::Error{fmt::format("'{}' is not a QEMU source: expected qemu-dbus:ADDRESS or qemu-qmp:SOCKET", spec)};
  }
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    std::string_view field = rest.substr(hash);
    rest = rest.substr(0, hash);
    if (!field.starts_with(kConsoleField))
      return core::Error{fmt::format("'{}': unknown option '{}' (only #console=N)", spec, field)};
    field.remove_prefix(kConsoleField.size());
    uint32_t id = 0;
    auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), id);
    if (field.empty() || error != std::errc() || end != field.data() + field.size())
      return core::Error{fmt::format("'{}': console '{}' is not a number", spec, field)};
    config.console = id;
  }
  if (rest.empty())
    return core::Error{fmt::format("'{}': no {} given", spec,
                                   config.target.kind == DisplayTarget::Kind::Bus ? "D-Bus address" : "QMP socket path")};
  if (config.target.kind == DisplayTarget::Kind::Bus && rest != "session" && !g_dbus_is_address(std::string(rest).c_str()))
    return core::Error{fmt::format("'{}': '{}' is not a D-Bus address such as unix:path=/run/vm-bus.sock", spec, rest)};
  config.target.address = std::string(rest);
  return config;
}

struct QemuSource::Session {
  std::unique_ptr<DisplayConnection> display;
  ConsoleInfo console;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<AudioListener> audio;  // none when not asked for or the VM has no D-Bus audio
  std::unique_ptr<AudioInListener> microphone;  // likewise
  std::unique_ptr<QemuClipboard> clipboard;  // with SourceCallbacks::clipboard
};

namespace {

constexpr const char* kAudioPath = "/org/qemu/Display1/Audio";
constexpr const char* kAudioInterface = "org.qemu.Display1.Audio";

// Audio.RegisterOutListener and the handshake on its socket, run together on the source's
// context (QEMU answers the call first, then waits for the handshake, then reads our object).
struct AudioRegistration {
  int outstanding = 2;
  bool answered = false;
  core::Status reply = core::Error{"not answered"};
  glib::GObjectPtr<GDBusConnection> connection;
  std::string handshake_error = "not done";

  static void on_reply(GObject* source, GAsyncResult* result, gpointer data) {
    auto* self = static_cast<AudioRegistration*>(data);
    glib::GErrorSlot err;
    glib::GVariantPtr value(g_dbus_connection_call_with_unix_fd_list_finish(G_DBUS_CONNECTION(source), nullptr, result, err.out()));
    self->reply = value ? core::Status{} : core::Status{core::Error{err.message()}};
    self->answered = true;
    --self->outstanding;
  }
  static void on_connected(GObject*, GAsyncResult* result, gpointer data) {
    auto* self = static_cast<AudioRegistration*>(data);
    glib::GErrorSlot err;
    self->connection.reset(g_dbus_connection_new_finish(result, err.out()));
    if (!self->connection) self->handshake_error = err.message();
    --self->outstanding;
  }
};

}  // namespace

QemuSource::QemuSource(const QemuSourceConfig& config)
    : config_(config), log_(config.name), input_(loop_, config.name) {}

QemuSource::~QemuSource() { stop(); }

core::Result<std::unique_ptr<QemuSource>> QemuSource::create(const QemuSourceConfig& config) {
  if (config.target.address.empty()) return core::Error{"QEMU source: no address"};
  if (config.min_backoff.count() <= 0 || config.max_backoff < config.min_backoff)
    return core::Error{fmt::format("QEMU source: backoff {}..{} ms is not a range", config.min_backoff.count(),
                                   config.max_backoff.count())};
  return std::unique_ptr<QemuSource>(new QemuSource(config));
}

std::string QemuSource::describe() const {
  return config_.target.describe() + (config_.console >= 0 ? fmt::format("#console={}", config_.console) : "");
}

core::Status QemuSource::start(SourceCallbacks callbacks) {
  if (running_) return core::Error{fmt::format("{} is already running", describe())};
  if (!callbacks.on_frame) return core::Error{fmt::format("{}: start() needs an on_frame callback", describe())};
  cancellable_.reset(g_cancellable_new());
  microphone_configured_ = callbacks.microphone != nullptr;
  running_ = true;
  loop_.start();
  // The connection's life runs as one task on the loop: its blocking D-Bus calls have the thread
  // to themselves, and it iterates the context itself while it serves QEMU and between retries.
  loop_.post([this, callbacks = std::move(callbacks)] { run(callbacks); });
  return {};
}

void QemuSource::stop() {
  if (!running_.exchange(false)) return;
  g_cancellable_cancel(cancellable_.get());
  g_main_context_wakeup(loop_.context());
  loop_.stop();
}

void QemuSource::request_resize(uint32_t width, uint32_t height, std::function<void(core::Status)> done) {
  input_.set_ui_info(width, height, std::move(done));
}

ConsoleInfo QemuSource::console() const {
  std::lock_guard lock(session_mutex_);
  return console_;
}

std::optional<AudioCaptureStats> QemuSource::audio_stats() const {
  if (!config_.audio) return std::nullopt;
  std::lock_guard lock(session_mutex_);
  return audio_ ? audio_->stats() : last_audio_stats_;
}

std::optional<MicrophoneCaptureStats> QemuSource::microphone_stats() const {
  if (!microphone_configured_) return std::nullopt;
  std::lock_guard lock(session_mutex_);
  return microphone_ ? microphone_->stats() : last_microphone_stats_;
}

core::Result<glib::GObjectPtr<GDBusConnection>> QemuSource::connect_audio(const DisplayConnection& display,
                                                                          const char* method) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return core::Error{fmt::format("socketpair(): {}", strerror(errno))};
  core::UniqueFd ours(pair[0]);
  glib::GObjectPtr<GUnixFDList> fds(g_unix_fd_list_new_from_array(&pair[1], 1));  // takes the fd
  glib::GErrorSlot err;
  glib::GObjectPtr<GSocket> socket(g_socket_new_from_fd(ours.get(), err.out()));
  if (!socket) return core::Error{fmt::format("cannot wrap the audio socket: {}", err.message())};
  ours.release();  // the GSocket owns it now
  glib::GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(socket.get()));

  AudioRegistration registration;
  glib::GObjectPtr<GCancellable> cancel(g_cancellable_new());
  g_dbus_connection_call_with_unix_fd_list(display.connection(), display.peer_name(), kAudioPath, kAudioInterface,
                                           method, g_variant_new("(h)", 0), nullptr,
                                           G_DBUS_CALL_FLAGS_NO_AUTO_START, DisplayConnection::kCallTimeoutMs, fds.get(),
                                           cancel.get(), &AudioRegistration::on_reply, &registration);
  g_dbus_connection_new(G_IO_STREAM(stream.get()), nullptr,
                        GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                             G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING),
                        nullptr, cancel.get(), &AudioRegistration::on_connected, &registration);
  wait_on_context(kRegisterTimeout, [&] {
    return registration.outstanding == 0 || (registration.answered && !registration.reply) || !running_;
  });
  if (registration.outstanding > 0) {
    // A refused call leaves the handshake waiting for a peer that will not come: end both.
    g_cancellable_cancel(cancel.get());
    g_socket_shutdown(socket.get(), TRUE, TRUE, nullptr);
    while (registration.outstanding > 0) g_main_context_iteration(loop_.context(), TRUE);
  }
  if (!registration.reply) return core::Error{fmt::format("Audio.{}: {}", method, registration.reply.error())};
  if (!registration.connection) return core::Error{fmt::format("audio connection: {}", registration.handshake_error)};
  return std::move(registration.connection);
}

std::optional<CaptureStats> QemuSource::capture_stats() const {
  const ListenerStats l = listener_stats();
  CaptureStats c;
  c.path = l.scanout_kind;
  c.frames = l.frames;
  c.display_messages = l.display_messages;
  c.unchanged_refreshes = l.unchanged_refreshes;
  c.pixel_bytes_received = l.pixel_bytes_received;
  c.update_bytes = l.update_bytes;
  c.bytes_written = l.bytes_written;
  c.mirror_bytes = l.mirror_bytes;
  c.tiles_compared = l.tiles_compared;
  c.tiles_changed = l.tiles_changed;
  c.refused = l.refused;
  c.last_refusal = l.last_refusal;
  c.cpu_ns = l.cpu_ns;
  c.refresh_quiet_ns = l.refresh_quiet_ns;
  const VmInputCounters input = input_.counters();
  c.input_sent = input.sent;
  c.input_errors = input.errors;
  c.input_shed = input.shed;
  return c;
}

ListenerStats QemuSource::listener_stats() const {
  std::lock_guard lock(session_mutex_);
  return listener_ ? listener_->stats() : last_stats_;
}

// Iterates the source's context until `done` or `limit`; stop() wakes it.
void QemuSource::wait_on_context(std::chrono::milliseconds limit, const std::function<bool()>& done) {
  bool timed_out = false;
  glib::GSourcePtr timer(g_timeout_source_new(guint(limit.count())));
  g_source_set_callback(
      timer.get(), [](gpointer flag) -> gboolean { return *static_cast<bool*>(flag) = true, G_SOURCE_REMOVE; },
      &timed_out, nullptr);
  g_source_attach(timer.get(), loop_.context());
  while (!timed_out && !done()) g_main_context_iteration(loop_.context(), TRUE);
}

core::Result<std::unique_ptr<QemuSource::Session>> QemuSource::connect_once(const SourceCallbacks& callbacks) {
  auto session = std::make_unique<Session>();
  auto display = DisplayConnection::open(config_.target, cancellable_.get());
  if (!display) return core::Error{display.error()};
  session->display = std::move(*display);
  auto console = session->display->choose_console(config_.console, cancellable_.get());
  if (!console) return core::Error{console.error()};
  session->console = *console;
  const std::string path = console->object_path();

  // Read before the listener exists: from then on this thread serves QEMU and must not block
  // on it (QEMU waits for its listeners at times, and would wait for us here).
  bool absolute = false;
  if (auto value = session->display->get_property(path, "org.qemu.Display1.Mouse", "IsAbsolute", cancellable_.get()))
    absolute = g_variant_get_boolean(value->get());
  uint32_t leds = 0;  // the keyboard LEDs a client shows
  if (auto value = session->display->get_property(path, "org.qemu.Display1.Keyboard", "Modifiers", cancellable_.get()))
    if (g_variant_is_of_type(value->get(), G_VARIANT_TYPE_UINT32)) leds = g_variant_get_uint32(value->get()) & 7u;
  std::string no_audio;  // why this VM's sound cannot be had ("" when it can)
  if (config_.audio || callbacks.microphone) {
    auto audio = session->display->call(kAudioPath, "org.freedesktop.DBus.Properties", "GetAll",
                                        g_variant_new("(s)", kAudioInterface), nullptr, cancellable_.get());
    if (!audio)
      no_audio = "the VM has no D-Bus audio: start QEMU with -audiodev dbus,id=snd0, -display dbus,...,audiodev=snd0 "
                 "and a sound device on it (-device intel-hda -device hda-duplex,audiodev=snd0, or "
                 "-machine pcspk-audiodev=snd0 for sound out only)";
  }

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return core::Error{fmt::format("socketpair(): {}", strerror(errno))};
  core::UniqueFd ours(pair[0]), theirs(pair[1]);

  // QEMU answers RegisterListener only after the handshake on the socket and after reading our
  // properties, so the call runs on a helper thread while this one does the handshake and serves.
  std::atomic<bool> registered{false};
  core::Result<glib::GVariantPtr> reply = core::Error{"not answered"};
  glib::GObjectPtr<GUnixFDList> fds(g_unix_fd_list_new_from_array(&pair[1], 1));  // takes the fd
  theirs.release();
  std::thread registrar([&] {
    reply = session->display->call(path, "org.qemu.Display1.Console", "RegisterListener", g_variant_new("(h)", 0),
                                   fds.get(), cancellable_.get());
    registered = true;
    g_main_context_wakeup(loop_.context());
  });
  ListenerConfig listener_config;
  listener_config.name = config_.name;
  listener_config.accept_tiled = config_.accept_tiled;
  listener_config.console = {session->display->connection(), session->display->peer_name(), path};
  auto listener = Listener::create(std::move(ours), listener_config, callbacks, cancellable_.get());
  log_.debug("listener handshake on console {}: {}", console->id, listener ? "done" : listener.error());
  if (listener) wait_on_context(kRegisterTimeout, [&] { return registered.load() || !running_; });
  registrar.join();  // the call is bounded by its own timeout and by the cancellable
  log_.debug("RegisterListener on console {}: {}", console->id, reply ? "done" : reply.error());
  if (!listener) return core::Error{fmt::format("console {}: {}", console->id, listener.error())};
  if (!reply) return core::Error{fmt::format("console {}: {}", console->id, reply.error())};
  session->listener = std::move(*listener);

  input_.attach(session->display->connection(), session->display->peer_name(), path, absolute, leds);
  std::string no_sound = no_audio, no_microphone = no_audio;
  if (config_.audio && no_audio.empty()) {
    auto connection = connect_audio(*session->display, "RegisterOutListener");
    core::Result<std::unique_ptr<AudioListener>> audio = core::Error{connection ? "" : connection.error()};
    if (connection) audio = AudioListener::create(std::move(*connection), config_.name, callbacks);
    if (audio) {
      session->audio = std::move(*audio);
      log_.info("audio: listening to the VM's sound");
    } else {
      no_sound = audio.error();
    }
  }
  if (callbacks.microphone && no_audio.empty()) {
    auto connection = connect_audio(*session->display, "RegisterInListener");
    core::Result<std::unique_ptr<AudioInListener>> microphone = core::Error{connection ? "" : connection.error()};
    if (connection) microphone = AudioInListener::create(std::move(*connection), config_.name, callbacks.microphone);
    if (microphone) {
      session->microphone = std::move(*microphone);
      log_.info("microphone: the VM can hear the viewers when the guest records");
    } else {
      no_microphone = microphone.error();
    }
  }
  {
    std::lock_guard lock(session_mutex_);
    if (config_.audio) {
      last_audio_stats_ = {};
      last_audio_stats_.unavailable = no_sound;
      if (!no_sound.empty()) log_.warn("audio: {}; the desktop is silent", no_sound);
    }
    if (callbacks.microphone) {
      last_microphone_stats_ = {};
      last_microphone_stats_.unavailable = no_microphone;
      if (!no_microphone.empty()) log_.warn("microphone: {}; the VM cannot hear the viewers", no_microphone);
    }
  }
  if (callbacks.clipboard) {
    // Last: QEMU reads our object while it handles Register, so from here on this thread only
    // serves (the run loop) and makes no blocking call to QEMU.
    auto clipboard = QemuClipboard::create(session->display->connection(), session->display->peer_name(),
                                           callbacks.clipboard, config_.name);
    if (clipboard)
      session->clipboard = std::move(*clipboard);
    else
      callbacks.clipboard->vm_unavailable(clipboard.error());
  }
  return session;
}

void QemuSource::run(const SourceCallbacks& callbacks) {
  auto backoff = config_.min_backoff;
  bool reported_down = false;
  while (running_) {
    auto session = connect_once(callbacks);
    if (!session) {
      if (!running_) break;
      if (!reported_down) {
        log_.warn("{}: {} (retrying every {} ms at most)", describe(), session.error(), config_.max_backoff.count());
        if (callbacks.on_state) callbacks.on_state(false, session.error());
        reported_down = true;
      } else {
        log_.debug("{}: {}", describe(), session.error());
      }
      wait_on_context(backoff, [&] { return !running_; });
      backoff = std::min(backoff * 2, config_.max_backoff);
      continue;
    }
    Session& live = **session;
    {
      std::lock_guard lock(session_mutex_);
      listener_ = live.listener.get();
      audio_ = live.audio.get();
      microphone_ = live.microphone.get();
      console_ = live.console;
    }
    backoff = config_.min_backoff;
    reported_down = false;
    connected_ = true;
    ++connections_;
    const std::string what = fmt::format("console {} '{}' {}x{} on {}", live.console.id, live.console.label,
                                         live.console.width, live.console.height, config_.target.describe());
    log_.info("listening to {}", what);
    if (callbacks.on_state) callbacks.on_state(true, what);

    while (running_ && !live.listener->closed()) g_main_context_iteration(loop_.context(), TRUE);

    const std::string why = running_ ? live.listener->close_reason() : "the source was stopped";
    input_.detach();
    wait_on_context(kDrainTimeout, [&] { return input_.pending() == 0; });
    {
      std::lock_guard lock(session_mutex_);
      last_stats_ = live.listener->stats();
      listener_ = nullptr;
      if (audio_) last_audio_stats_ = audio_->stats(), last_audio_stats_.connected = false;
      audio_ = nullptr;
      if (microphone_) last_microphone_stats_ = microphone_->stats(), last_microphone_stats_.connected = false;
      microphone_ = nullptr;
    }
    session->reset();
    // Let cancelled calls of the closed session run their callbacks (they free their state).
    for (int i = 0; i < 100 && g_main_context_pending(loop_.context()); ++i) g_main_context_iteration(loop_.context(), FALSE);
    connected_ = false;
    log_.info("{}: {}", describe(), why);
    if (callbacks.on_state) callbacks.on_state(false, why);
    reported_down = true;
  }
  input_.detach();
  wait_on_context(kDrainTimeout, [&] { return input_.pending() == 0; });
}

}  // namespace vdistream::capture::qemu
