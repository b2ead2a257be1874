#include "spice/spice_desktop.hpp"

#include <csignal>
#include <mutex>

#include <glib.h>
#include <spice.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spice/glib_core.hpp"
#include "spice/inputs.hpp"

namespace vdistream::spice {

namespace {
constexpr unsigned kLedPollMs = 250;
}  // namespace

core::Result<SpiceMode> parse_spice_mode(const std::string& name) {
  if (name == "qxl") return SpiceMode::Qxl;
  if (name == "stream") return SpiceMode::Stream;
  return core::Error{fmt::format("SPICE mode '{}': expected qxl or stream", name)};
}

core::Result<SpiceConfig> spice_config_from_options(const SpiceOptions& o, const std::string& desktop_name) {
  SpiceConfig config;
  config.name = desktop_name;
  auto listen = parse_listen_address(o.address);
  if (!listen) return core::Error{listen.error()};
  config.listen = *listen;
  auto mode = parse_spice_mode(o.mode);
  if (!mode) return core::Error{mode.error()};
  config.mode = *mode;
  if (o.no_auth && !o.ticket_file.empty())
    return core::Error{"--no-auth and --spice-ticket-file contradict each other: give one"};
  config.no_auth = o.no_auth;
  config.lossy = o.lossy;
  if (!o.ticket_file.empty()) {
    auto ticket = read_ticket_file(o.ticket_file);
    if (!ticket) return core::Error{ticket.error()};
    config.ticket = *ticket;
  } else if (!o.no_auth) {
    return core::Error{"SPICE needs a password: give --spice-ticket-file FILE, or --no-auth to serve without one"};
  }
  if (!o.tls_dir.empty()) {
    if (config.listen.is_unix()) return core::Error{"--spice-tls-dir needs a TCP --spice ADDRESS:PORT, not a unix socket"};
    if (config.listen.port == 0 || config.listen.port == 65535)
      return core::Error{fmt::format("--spice-tls-dir serves TLS on the SPICE port + 1: port {} has none",
                                     config.listen.port)};
    auto tls = tls_files_in(o.tls_dir);
    if (!tls) return core::Error{tls.error()};
    config.tls = *tls;
  }
  return config;
}

SpiceDesktop::SpiceDesktop(const SpiceConfig& config, core::InputSink* input, core::KeyframeRequester* keyframes)
    : input_(input),
      config_(config),
      log_(config.name),
      inputs_(std::make_unique<SpiceInputs>(input)),
      qxl_(log_, thread_) {
  if (config.mode == SpiceMode::Stream) {
    stream_ = std::make_shared<StreamProducer>(log_, thread_, keyframes, config.stream_trailing_delimiter);
    stream_mjpeg_ = stream_->mjpeg_sink();
  }
  if (config.audio) playback_ = std::make_unique<SpicePlayback>(thread_);
  if (config.microphone) record_ = std::make_unique<SpiceRecord>(log_, thread_, config.microphone);
  if (config.clipboard) agent_ = std::make_unique<SpiceAgent>(log_, thread_, config.clipboard);
}

core::Result<std::unique_ptr<SpiceDesktop>> SpiceDesktop::create(const SpiceConfig& config, core::InputSink* input,
                                                                 core::KeyframeRequester* keyframes) {
  if (config.mode == SpiceMode::Stream && !keyframes)
    return core::Error{"SPICE stream mode needs the encoder (a KeyframeRequester) to ask for IDRs"};
  if (!config.no_auth && (!config.ticket || config.ticket->password.empty()))
    return core::Error{"SPICE needs a ticket (--spice-ticket-file FILE), or --no-auth to serve without a password"};
  std::unique_ptr<SpiceDesktop> desktop(new SpiceDesktop(config, input, keyframes));
  desktop->thread_.start();
  core::Status started = desktop->thread_.invoke([&] {
    glib_core_bind_thread(&desktop->log_, &desktop->clients_);
    return desktop->start_server();
  });
  if (!started) return core::Error{started.error()};
  return desktop;
}

SpiceDesktop::~SpiceDesktop() {
  if (stream_) stream_->detach();
  thread_.invoke([this] {
    stop_server();
    glib_core_bind_thread(nullptr, nullptr);
  });
  thread_.stop();
}

core::Status SpiceDesktop::start_server() {
  const ListenAddress& at = config_.listen;
  // spice-server writes to its clients with plain write()/writev(): a client that went away makes
  // that EPIPE and raises SIGPIPE, whose default kills the whole process. QEMU ignores it process-wide
  // for the same reason (as GLib's GSocket does), so every process hosting a SPICE server does too.
  std::signal(SIGPIPE, SIG_IGN);
  server_ = spice_server_new();
  if (!server_) return core::Error{"spice_server_new failed"};
  auto fail = [this](std::string message) -> core::Status {
    spice_server_destroy(server_);
    server_ = nullptr;
    glib_core_drop_leftovers(thread_.context());
    return core::Error{std::move(message)};
  };

  if (at.is_unix()) {
    struct stat st{};
    // A socket left by an earlier run would make bind fail; anything else is not ours to remove.
    if (lstat(at.unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(at.unix_path.c_str());
    spice_server_set_addr(server_, at.unix_path.c_str(), SPICE_ADDR_FLAG_UNIX_ONLY);
  } else {
    const int family_flag = at.host.find(':') != std::string::npos ? SPICE_ADDR_FLAG_IPV6_ONLY : SPICE_ADDR_FLAG_IPV4_ONLY;
    spice_server_set_addr(server_, at.host.c_str(), family_flag);
    if (spice_server_set_port(server_, at.port) != 0) return fail(fmt::format("SPICE port {} is invalid", at.port));
  }

  if (config_.no_auth) {
    spice_server_set_noauth(server_);
    log_.warn("SPICE authentication is off (--no-auth): anyone who can reach {} can use this desktop", at.to_string());
  } else if (spice_server_set_ticket(server_, config_.ticket->password.c_str(), config_.ticket->lifetime_seconds, 0, 0) !=
             0) {
    return fail("SPICE refused the ticket");
  }
  if (config_.tls) {
    const TlsFiles& tls = *config_.tls;
    const int tls_port = tls.port ? tls.port : at.port + 1;
    if (spice_server_set_tls(server_, tls_port, tls.ca_cert.c_str(), tls.server_cert.c_str(), tls.server_key.c_str(),
                             nullptr, nullptr, nullptr) != 0)
      return fail(fmt::format("SPICE TLS setup failed (port {}, certificate {}, key {})", tls_port, tls.server_cert,
                              tls.server_key));
  }
  spice_server_set_name(server_, config_.name.c_str());
  // Lossless by default; spice-server's own video detection would re-encode moving regions
  // with its 400 ms playout delay, so it stays off.
  spice_server_set_image_compression(server_, SPICE_IMAGE_COMPRESSION_AUTO_GLZ);
  spice_server_set_jpeg_compression(server_, config_.lossy ? SPICE_WAN_COMPRESSION_ALWAYS : SPICE_WAN_COMPRESSION_NEVER);
  spice_server_set_zlib_glz_compression(server_, SPICE_WAN_COMPRESSION_AUTO);
  spice_server_set_streaming_video(server_, SPICE_STREAM_VIDEO_OFF);
  // Our agent (the clipboard's) takes no mouse: the pointer stays on the tablet and the inputs
  // channel. No file transfer either; copy and paste only with a clipboard.
  spice_server_set_agent_mouse(server_, 0);
  spice_server_set_agent_file_xfer(server_, 0);
  spice_server_set_agent_copypaste(server_, agent_ ? 1 : 0);

  // spice_server_init() runs libsasl2's process-wide sasl_server_init(), which is not safe to run
  // on two threads at once: desktops starting together raced in it (LeakSanitizer saw its global
  // state allocated twice). One desktop's server starts at a time.
  static std::mutex init_mutex;
  std::unique_lock init_lock(init_mutex);
  if (spice_server_init(server_, glib_core_interface()) != 0)
    return fail(fmt::format("SPICE cannot listen on {} (in use, or not an address of this host)", at.to_string()));

  if (stream_) {
    // Stream mode: no QXL; the stream device's port brings the display channel.
    if (spice_server_add_interface(server_, stream_->instance()) != 0) return fail("SPICE refused the stream device");
    stream_->attached();
  } else {
    if (spice_server_add_interface(server_, qxl_.instance()) != 0) return fail("SPICE refused the QXL display");
    qxl_.attached();
  }
  if (spice_server_add_interface(server_, inputs_->keyboard()) != 0 ||
      spice_server_add_interface(server_, inputs_->tablet()) != 0 ||
      spice_server_add_interface(server_, inputs_->mouse()) != 0)
    return fail("SPICE refused the keyboard or mouse");
  if (playback_) {
    if (spice_server_add_interface(server_, playback_->instance()) != 0) return fail("SPICE refused the playback channel");
    playback_->attached();
  }
  if (record_) {
    if (spice_server_add_interface(server_, record_->instance()) != 0) return fail("SPICE refused the record channel");
    record_->attached();
  }
  if (agent_) {
    if (spice_server_add_interface(server_, agent_->instance()) != 0) return fail("SPICE refused the clipboard agent");
    agent_->attached();
  }
  spice_server_vm_start(server_);
  if (input_) {
    // The VM's LEDs change rarely and the InputSink reports them by value: a slow poll suffices.
    GSource* timer = g_timeout_source_new(kLedPollMs);
    g_source_set_callback(
        timer,
        [](gpointer inputs) -> gboolean {
          static_cast<SpiceInputs*>(inputs)->poll_leds();
          return G_SOURCE_CONTINUE;
        },
        inputs_.get(), nullptr);
    led_timer_ = g_source_attach(timer, thread_.context());
    g_source_unref(timer);
  }
  log_.info("SPICE serving on {}{} ({} mode, {})", at.to_string(),
            config_.tls ? fmt::format(", TLS on port {}", config_.tls->port ? config_.tls->port : at.port + 1) : "",
            config_.mode == SpiceMode::Qxl ? "qxl" : "stream", config_.no_auth ? "no authentication" : "ticket");
  return core::Status::success();
}

void SpiceDesktop::stop_server() {
  if (!server_) return;
  if (led_timer_) {
    if (GSource* timer = g_main_context_find_source_by_id(thread_.context(), led_timer_)) g_source_destroy(timer);
    led_timer_ = 0;
  }
  spice_server_vm_stop(server_);
  if (agent_) {
    agent_->detach();
    spice_server_remove_interface(agent_->instance());
  }
  if (playback_) {
    playback_->detach();
    spice_server_remove_interface(playback_->instance());
  }
  if (record_) {
    record_->detach();
    spice_server_remove_interface(record_->instance());
  }
  qxl_.destroy_primary();
  spice_server_destroy(server_);
  server_ = nullptr;
  if (size_t left = glib_core_drop_leftovers(thread_.context()))
    log_.debug("dropped {} timers/watches spice-server left behind", left);
  inputs_->free_server_state();
  log_.info("SPICE server stopped");
}

core::Status SpiceDesktop::on_frame(const core::Frame& frame) {
  if (stream_) return core::Error{"SPICE stream mode takes encoded frames (stream_sink(), stream_mjpeg_sink()), not frames"};
  return qxl_.on_frame(frame);
}

void SpiceDesktop::set_cursor(const core::CursorShape& shape, const core::CursorPosition& at) {
  if (stream_)
    stream_->set_cursor(shape, at);
  else
    qxl_.set_cursor(shape, at);
}

void SpiceDesktop::move_cursor(const core::CursorPosition& at) {
  if (stream_)
    stream_->move_cursor(at);
  else
    qxl_.move_cursor(at);
}

std::string viewer_command(const ListenAddress& at, const std::string& password) {
  std::string uri = at.is_unix() ? "spice+unix://" + at.unix_path : "spice://" + at.to_string();
  if (!password.empty()) uri += "?password=" + password;
  return "remote-viewer '" + uri + "'";
}

}  // namespace vdistream::spice
